// One-line set-up for a test file (node:test): starts Guichet and Chromium before the file's
// tests and stops both after them.
//
//   import { test } from 'node:test';
//   import { useGuichet, checkPage, VIEWPORTS } from '../lib/harness.js';
//   const guichet = useGuichet();
//   test('my journey', async () => {
//     await guichet.withPage(VIEWPORTS[1], async (page) => {
//       await page.goto('/saint-aubin-sur-lys/');
//       await checkPage(page, 'my-journey-step-1');
//     });
//   });
//
// Each test file runs in its own process with its own server and data directory, so journeys
// that change data (sign-up, requests, back-office) do not see each other's.
import { after, before } from 'node:test';
import { launchBrowser, newContext, newPage, withPage } from './browser.js';
import { startGuichet } from './guichet.js';

export { VIEWPORTS, chromiumPath, launchBrowser, newContext, newPage, withPage } from './browser.js';
export { checkPage, formatViolations, runAxe, SCREENSHOT_DIR, WCAG_TAGS } from './a11y.js';
export { guichetBin, REPO_ROOT, startGuichet } from './guichet.js';

/**
 * Registers before/after hooks in the current test file (or suite) and returns accessors:
 * `url` (base URL, ending in '/'), `server`, `browser`, `newContext(size)`, `newPage(size)`
 * (context + watched page; close it with `page.context().close()`), and `withPage(size, fn)`.
 */
export function useGuichet(startOptions = {}) {
  let server;
  let browser;
  before(async () => {
    server = await startGuichet(startOptions);
    browser = await launchBrowser();
  });
  after(async () => {
    try {
      await browser?.close();
    } finally {
      await server?.stop();
    }
  });
  const ready = () => {
    if (!server || !browser) throw new Error('useGuichet(): used outside a test (before hooks not run)');
  };
  return {
    get url() {
      ready();
      return server.url;
    },
    get server() {
      ready();
      return server;
    },
    get browser() {
      ready();
      return browser;
    },
    newContext(size = {}) {
      ready();
      return newContext(browser, { baseURL: server.url, ...size });
    },
    async newPage(size = {}) {
      ready();
      return newPage(await newContext(browser, { baseURL: server.url, ...size }));
    },
    withPage(size, fn) {
      ready();
      return withPage(browser, { baseURL: server.url, ...size }, async (page, context) => {
        try {
          return await fn(page, context);
        } catch (err) {
          // A failure on a busy CI machine must be readable from its report alone: the page
          // the browser was on, and what the server warned about.
          await explain(err, page, server);
          throw err;
        }
      });
    },
  };
}

/** Appends to `err`'s message the page's address and text, and the server's last warnings. */
async function explain(err, page, server) {
  if (!(err instanceof Error)) return;
  let where = '';
  try {
    const text = await page.locator('main').innerText({ timeout: 1_000 });
    where = `${page.url()}: ${text.replace(/\s+/g, ' ').slice(0, 600)}`;
  } catch {
    where = page.url();
  }
  const warnings = server
    .output()
    .split('\n')
    .filter((line) => /"level":"(WARN|ERROR)"/.test(line))
    .slice(-20);
  err.message += `\n--- the page: ${where}\n--- the server's last warnings (${warnings.length}):\n${warnings.join('\n')}`;
}
