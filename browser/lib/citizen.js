// Helpers for the citizen-portal journeys: the demo citizen, form submissions that report the
// final HTTP status, small upload files made on the fly, and keyboard focus checks.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { deflateSync } from 'node:zlib';

/** The citizen `guichet demo` creates (e-mail already verified, lives in Saint-Aubin-sur-Lys). */
export const DEMO_CITIZEN = Object.freeze({
  email: 'camille.martin@exemple.test',
  password: 'demo-guichet-2026',
  name: 'Camille Martin',
});

/** A request reference as Guichet prints it: prefix, year, six-digit sequence (`QM-2026-000001`). */
export const REFERENCE = /\b[A-Z]{2,4}-\d{4}-\d{6}\b/;

/**
 * Runs `action` (a click, a key press) that submits a form or follows a link, waits for the
 * resulting page to load, and returns the main document's final response (after redirects), so
 * that a test can assert `status()` (422 on a refused form, 200 after a 303, ...).
 */
export async function navigation(page, action, { timeout = 30_000 } = {}) {
  const [response] = await Promise.all([page.waitForNavigation({ waitUntil: 'load', timeout }), action()]);
  assert.ok(response, `no response after the navigation to ${page.url()}`);
  return response;
}

/** Logs in through the form of /compte/connexion (the page must be open already). */
export async function fillLogin(page, { email, password } = DEMO_CITIZEN) {
  await page.getByLabel('Adresse électronique').fill(email);
  await page.getByLabel('Mot de passe', { exact: true }).fill(password);
  return navigation(page, () => page.getByRole('button', { name: 'Se connecter' }).click());
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes) {
  let crc = 0xffffffff;
  for (const b of bytes) crc = CRC_TABLE[(crc ^ b) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function pngChunk(type, data) {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** A valid RGB PNG image of `width` × `height` pixels (a red-to-blue gradient), as bytes. */
export function pngBytes(width = 8, height = 8) {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // colour type: truecolour
  const rows = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const at = y * (width * 3 + 1) + 1 + x * 3; // each row starts with filter type 0
      rows[at] = Math.round((255 * x) / Math.max(1, width - 1));
      rows[at + 2] = Math.round((255 * y) / Math.max(1, height - 1));
    }
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', header),
    pngChunk('IDAT', deflateSync(rows)),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/**
 * A fresh temporary directory for upload files: `file(name, bytes)` writes one and returns its
 * path; `remove()` deletes the directory.
 */
export function uploadDir() {
  const dir = mkdtempSync(path.join(tmpdir(), 'guichet-uploads-'));
  return {
    dir,
    file(name, bytes) {
      const file = path.join(dir, name);
      writeFileSync(file, bytes);
      return file;
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * What has the keyboard focus: tag, id, name, type, value, checked, its accessible-ish name
 * (label text for a form control, text for a link or button), and its focus style.
 */
export function focused(page) {
  return page.evaluate(() => {
    const el = document.activeElement;
    if (!el || el === document.body || el === document.documentElement) return { tag: 'body' };
    const style = getComputedStyle(el);
    const label = el.labels?.length ? el.labels[0].innerText : '';
    const box = el.getBoundingClientRect();
    return {
      tag: el.tagName.toLowerCase(),
      id: el.id,
      name: el.getAttribute('name'),
      type: el.getAttribute('type'),
      value: el.value,
      checked: el.checked,
      text: (label || el.innerText || el.value || el.getAttribute('aria-label') || '').trim().replace(/\s+/g, ' '),
      outlineStyle: style.outlineStyle,
      outlineWidth: parseFloat(style.outlineWidth) || 0,
      outlineColor: style.outlineColor,
      boxShadow: style.boxShadow,
      size: { width: box.width, height: box.height },
    };
  });
}

function describe(f) {
  return f.tag === 'body' ? 'nothing (body)' : `<${f.tag}${f.id ? ` id="${f.id}"` : ''}> "${f.text}"`;
}

/** Fails unless the focused element shows a focus indicator: an outline or a box-shadow. */
export function assertFocusVisible(f, where = '') {
  assert.notEqual(f.tag, 'body', `nothing has the focus${where ? ` ${where}` : ''}`);
  const outline =
    f.outlineStyle !== 'none' && f.outlineWidth > 0 && !/rgba\(\d+, \d+, \d+, 0\)|transparent/.test(f.outlineColor);
  const shadow = f.boxShadow && f.boxShadow !== 'none';
  assert.ok(
    outline || shadow,
    `${describe(f)} has the focus but no visible focus indicator${where ? ` ${where}` : ''} ` +
      `(outline ${f.outlineStyle} ${f.outlineWidth}px ${f.outlineColor}, box-shadow ${f.boxShadow})`,
  );
  assert.ok(f.size.width > 0 && f.size.height > 0, `${describe(f)} has the focus but no size`);
}

/**
 * Presses Tab until the focused element matches `match(f)` (f as returned by `focused`), checking
 * on every stop that the focus is visible. Returns the matching element's description; fails
 * after `max` presses with the list of stops.
 */
export async function tabTo(page, match, { max = 40, what = 'the target' } = {}) {
  const stops = [];
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab');
    const f = await focused(page);
    stops.push(describe(f));
    if (f.tag === 'body') continue; // wrapped past the end of the page
    assertFocusVisible(f, `after ${i + 1} Tab(s) on ${page.url()}`);
    if (match(f)) return f;
  }
  assert.fail(`${what} not reached with ${max} Tabs on ${page.url()}; focus went to:\n  ${stops.join('\n  ')}`);
}
