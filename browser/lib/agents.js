// Helpers for the agents' back-office journeys: the demo agents, their login form, and the
// time-based one-time passwords (RFC 6238) of the second factor, computed from the base32 secret
// the enrolment page shows, as an authenticator application would.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { navigation } from './citizen.js';

/** The password of every demo account. */
export const DEMO_PASSWORD = 'demo-guichet-2026';

/** Agents `guichet demo` creates. */
export const DEMO_AGENTS = Object.freeze({
  /** Commune agent: no second factor required, the password alone logs in. */
  commune: Object.freeze({ email: 'agent@saint-aubin-sur-lys.test', password: DEMO_PASSWORD, name: 'Secrétariat de Saint-Aubin-sur-Lys' }),
  /** Commune administrator: must enrol a TOTP second factor at first login. */
  admin: Object.freeze({ email: 'admin@saint-aubin-sur-lys.test', password: DEMO_PASSWORD, name: 'Administration de Saint-Aubin-sur-Lys' }),
  /** EPCI agent, also member of the first three communes. */
  epci: Object.freeze({ email: 'agent@cc-val-de-lys.test', password: DEMO_PASSWORD, name: 'Alexis Roussel (EPCI)' }),
});

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 base32 (no padding needed; spaces, '=' and case ignored) to bytes. */
export function base32Decode(text) {
  const out = [];
  let buffer = 0;
  let bits = 0;
  for (const c of text.replace(/[\s=]/g, '').toUpperCase()) {
    const v = BASE32.indexOf(c);
    if (v < 0) throw new Error(`not base32: ${JSON.stringify(text)}`);
    buffer = ((buffer << 5) | v) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out.push((buffer >> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** The RFC 6238 code (HMAC-SHA1, 30-second steps, 6 digits) of a base32 secret at a time step. */
export function totpAtStep(secret, step) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const hash = createHmac('sha1', base32Decode(secret)).update(counter).digest();
  const offset = hash[hash.length - 1] & 0x0f;
  return String((hash.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}

/** The current code of a base32 secret (`at`: milliseconds since the epoch, default now). */
export function totpCode(secret, at = Date.now()) {
  return totpAtStep(secret, Math.floor(at / 1000 / 30));
}

/**
 * A 6-digit code that is certainly wrong now: none of the codes of the previous, current and
 * next steps (the server accepts one step of clock drift either way).
 */
export function wrongTotpCode(secret, at = Date.now()) {
  const step = Math.floor(at / 1000 / 30);
  const valid = new Set([-2, -1, 0, 1, 2].map((d) => totpAtStep(secret, step + d)));
  for (let n = 123456; ; n = (n + 111_111) % 1_000_000) {
    const code = String(n).padStart(6, '0');
    if (!valid.has(code)) return code;
  }
}

/** Fills and sends the form of /agents/connexion (the page must be open already). */
export async function fillAgentLogin(page, { email, password }) {
  await page.getByLabel('Adresse électronique professionnelle', { exact: true }).fill(email);
  await page.getByLabel('Mot de passe', { exact: true }).fill(password);
  return navigation(page, () => page.getByRole('button', { name: 'Se connecter', exact: true }).click());
}

/**
 * Opens /agents/connexion and logs in; returns the final response (the inbox, or the TOTP
 * enrolment or code page when a second factor is due).
 */
export async function agentLogin(page, agent) {
  const response = await page.goto('/agents/connexion');
  assert.equal(response.status(), 200);
  return fillAgentLogin(page, agent);
}
