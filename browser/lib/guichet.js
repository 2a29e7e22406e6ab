// Starts the Guichet binary (`guichet demo`) on a free loopback port with a fresh data directory,
// and stops it with SIGTERM. The binary is $GUICHET_BIN, else ${CARGO_TARGET_DIR:-target}/debug/guichet.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const SETPRIV = '/usr/bin/setpriv';
const BANNER = /^Guichet \(démonstration\) : (https?:\/\/\S+)/;

/** The binary to test: $GUICHET_BIN, or the debug build `cargo test` leaves behind. */
export function guichetBin() {
  if (process.env.GUICHET_BIN) return path.resolve(process.env.GUICHET_BIN);
  const target = process.env.CARGO_TARGET_DIR
    ? path.resolve(REPO_ROOT, process.env.CARGO_TARGET_DIR)
    : path.join(REPO_ROOT, 'target');
  return path.join(target, 'debug', 'guichet');
}

/** The parent's environment without anything that would configure Guichet behind our back. */
function childEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('GUICHET_') || k === 'DATABASE_URL') continue;
    env[k] = v;
  }
  env.GUICHET_LOG_FORMAT = 'json';
  return env;
}

/**
 * Starts `guichet demo --listen 127.0.0.1:0 --data-dir <fresh temp dir>` and resolves once it
 * serves. Returns { url, dataDir, pid, output(), stop() }; `url` ends with '/'.
 * `stop()` sends SIGTERM, waits for the exit, removes the data directory, and throws if the
 * process did not exit 0 (graceful shutdown is part of the contract).
 */
export async function startGuichet({ bin = guichetBin(), args = [], startTimeoutMs = 60_000 } = {}) {
  if (!existsSync(bin)) {
    throw new Error(`Guichet binary not found at ${bin}: build it (cargo build -p guichet) or set GUICHET_BIN`);
  }
  const dataDir = mkdtempSync(path.join(tmpdir(), 'guichet-browser-'));
  const argv = ['demo', '--listen', '127.0.0.1:0', '--data-dir', path.join(dataDir, 'data'), ...args];
  // If this process dies without running its exit handlers (the test runner killed, say), the
  // kernel sends the server SIGTERM: util-linux's setpriv sets the parent-death signal, then
  // execs the binary.
  const [command, commandArgs] = existsSync(SETPRIV)
    ? [SETPRIV, ['--pdeathsig', 'TERM', '--', bin, ...argv]]
    : [bin, argv];
  const child = spawn(command, commandArgs, { env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = []; // stdout and stderr, for error messages
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });

  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`Guichet did not report its URL within ${startTimeoutMs} ms:\n${tail(lines)}`));
    }, startTimeoutMs);
    const found = (u) => {
      clearTimeout(timer);
      resolve(u.endsWith('/') ? u : `${u}/`);
    };
    readline.createInterface({ input: child.stderr }).on('line', (line) => {
      lines.push(`[stderr] ${line}`);
      if (!line.startsWith('{')) return;
      try {
        const entry = JSON.parse(line);
        const message = entry.message ?? entry.fields?.message;
        const u = entry.url ?? entry.fields?.url;
        if (message === 'serving' && typeof u === 'string') found(u);
      } catch {
        // not a log line
      }
    });
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      lines.push(`[stdout] ${line}`);
      const m = BANNER.exec(line.trim());
      if (m) found(m[1]);
    });
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${bin}: ${err.message}`));
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`Guichet exited before serving (code ${code}, signal ${signal}):\n${tail(lines)}`));
    });
  }).catch((err) => {
    process.removeListener('exit', killOnExit);
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  });

  let stopped = null;
  return {
    url,
    dataDir,
    pid: child.pid,
    output: () => lines.join('\n'),
    stop(timeoutMs = 20_000) {
      stopped ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        let timer;
        const result = await Promise.race([
          exited,
          new Promise((resolve) => {
            timer = setTimeout(() => resolve(null), timeoutMs);
          }),
        ]);
        clearTimeout(timer);
        process.removeListener('exit', killOnExit);
        if (result === null) {
          child.kill('SIGKILL');
          await exited;
        }
        rmSync(dataDir, { recursive: true, force: true });
        if (result === null) {
          throw new Error(`Guichet did not stop within ${timeoutMs} ms of SIGTERM:\n${tail(lines)}`);
        }
        if (result.code !== 0) {
          throw new Error(
            `Guichet exited with code ${result.code} (signal ${result.signal}) after SIGTERM:\n${tail(lines)}`,
          );
        }
        return result;
      })();
      return stopped;
    },
  };
}

function tail(lines, n = 40) {
  return lines.slice(-n).join('\n') || '(no output)';
}
