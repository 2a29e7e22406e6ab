// Headless Chromium through playwright-core. Playwright never downloads a browser here: it drives
// the system's Chromium ($CHROMIUM_PATH, else /usr/bin/chromium, else `chromium` in PATH).
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

/** The two viewports every page is checked at: desktop and a small phone. */
export const VIEWPORTS = Object.freeze([
  Object.freeze({ width: 1280, height: 800 }),
  Object.freeze({ width: 375, height: 740 }),
]);

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function executable(file) {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Path of the Chromium to drive, or null when there is none. */
export function chromiumPath() {
  if (process.env.CHROMIUM_PATH) return process.env.CHROMIUM_PATH;
  if (executable('/usr/bin/chromium')) return '/usr/bin/chromium';
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && executable(path.join(dir, 'chromium'))) return path.join(dir, 'chromium');
  }
  return null;
}

/**
 * Launches headless Chromium. Playwright gives every launch a fresh temporary user-data-dir
 * (an empty profile) and deletes it on `browser.close()`.
 */
export async function launchBrowser() {
  const executablePath = chromiumPath();
  if (!executablePath) {
    throw new Error('Chromium not found: install Debian\'s chromium package or set CHROMIUM_PATH');
  }
  return chromium.launch({
    executablePath,
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: 60_000,
  });
}

/**
 * A new, isolated browser context (own cookies and storage) with a viewport of the given size,
 * French locale, and `baseURL` so that `page.goto('/cc-val-de-lys/')` works.
 * Extra Playwright context options may be passed in `options`.
 */
export async function newContext(browser, { width, height, baseURL, ...options } = {}) {
  const size = { width: width ?? VIEWPORTS[0].width, height: height ?? VIEWPORTS[0].height };
  const context = await browser.newContext({
    viewport: size,
    locale: 'fr-FR',
    timezoneId: 'Europe/Paris',
    baseURL,
    ...options,
  });
  context.setDefaultTimeout(15_000);
  return context;
}

/**
 * Opens a page in `context` and records what goes wrong while it lives: uncaught script errors,
 * console errors (Content-Security-Policy refusals among them), failed requests and sub-resources
 * answered with an HTTP error. `checkPage` fails if any were recorded; `page.guichetProblems`
 * holds them. The navigation's own status (a 404 page, say) is not a problem: tests assert it.
 */
export async function newPage(context) {
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (err) => problems.push(`uncaught error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    // Chromium logs every HTTP error as a console error, the main document's included;
    // sub-resources are checked by status below.
    if (msg.text().startsWith('Failed to load resource')) return;
    problems.push(`console error: ${msg.text()}`);
  });
  page.on('requestfailed', (req) => {
    // A request cut short by a navigation is not a failure of the page.
    if (req.failure()?.errorText === 'net::ERR_ABORTED') return;
    problems.push(`request failed: ${req.method()} ${req.url()} (${req.failure()?.errorText})`);
  });
  page.on('response', (res) => {
    const req = res.request();
    if (req.isNavigationRequest() && req.frame() === page.mainFrame()) return;
    if (res.status() >= 400) problems.push(`HTTP ${res.status()} for ${req.method()} ${res.url()}`);
  });
  page.guichetProblems = problems;
  return page;
}

/**
 * Runs `fn(page, context)` in a fresh context of the given size, closing the context afterwards
 * whatever happens. The usual shape of a test:
 *   await withPage(browser, { ...viewport, baseURL }, async (page) => { ... });
 */
export async function withPage(browser, options, fn) {
  const context = await newContext(browser, options);
  try {
    const page = await newPage(context);
    return await fn(page, context);
  } finally {
    await context.close();
  }
}
