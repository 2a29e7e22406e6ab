// Accessibility check with axe-core (WCAG 2.0 and 2.1, levels A and AA) and a full-page
// screenshot per page and width in <repo>/screenshots/.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { REPO_ROOT } from './guichet.js';

export const SCREENSHOT_DIR = path.join(REPO_ROOT, 'screenshots');
export const WCAG_TAGS = Object.freeze(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']);

const require = createRequire(import.meta.url);
const AXE_PATH = require.resolve('axe-core/axe.min.js');
let axeSource;

/**
 * Puts axe-core into the page. Guichet's pages forbid inline scripts (Content-Security-Policy
 * `script-src 'self'`), so `page.addScriptTag({ path })`, which inserts an inline <script>, is
 * refused there; evaluating the source through the DevTools protocol is not subject to the
 * page's CSP (it is what @axe-core/playwright does), and keeps the CSP in force for the page.
 */
async function injectAxe(page) {
  if (await page.evaluate(() => typeof window.axe === 'object')) return;
  axeSource ??= readFileSync(AXE_PATH, 'utf8');
  await page.evaluate(`${axeSource}\n;void 0;`);
  assert.ok(await page.evaluate(() => typeof window.axe === 'object'), `axe-core did not load from ${AXE_PATH}`);
}

/**
 * Runs axe on the page and returns its violations, each as
 * { id, impact, help, helpUrl, nodes: [{ target, html, summary }] }.
 * Options: `tags` (default WCAG_TAGS), `disableRules` (rule ids, each needs a reason in the test),
 * `include` / `exclude` (CSS selectors).
 */
export async function runAxe(page, { tags = WCAG_TAGS, disableRules = [], include, exclude } = {}) {
  await injectAxe(page);
  return page.evaluate(
    async ({ tags, disableRules, include, exclude }) => {
      const context = {};
      if (include) context.include = include;
      if (exclude) context.exclude = exclude;
      const rules = Object.fromEntries(disableRules.map((id) => [id, { enabled: false }]));
      const result = await window.axe.run(Object.keys(context).length ? context : document, {
        runOnly: { type: 'tag', values: tags },
        rules,
        resultTypes: ['violations'],
      });
      return result.violations.map((v) => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        helpUrl: v.helpUrl,
        nodes: v.nodes.map((n) => ({
          target: n.target.map((t) => (Array.isArray(t) ? t.join(' >>> ') : t)).join(' '),
          html: n.html,
          summary: n.failureSummary,
        })),
      }));
    },
    { tags: [...tags], disableRules, include, exclude },
  );
}

/** A readable list of violations, one rule per paragraph, with the elements it failed on. */
export function formatViolations(violations) {
  return violations
    .map((v) => {
      const nodes = v.nodes
        .map((n) => {
          const html = n.html.length > 160 ? `${n.html.slice(0, 157)}...` : n.html;
          const why = (n.summary ?? '').split('\n').map((l) => l.trim()).filter(Boolean).slice(0, 3);
          return [`    - ${n.target}`, `      ${html}`, ...why.map((l) => `      ${l}`)].join('\n');
        })
        .join('\n');
      return `  [${v.impact ?? 'n/a'}] ${v.id}: ${v.help}\n    ${v.helpUrl}\n${nodes}`;
    })
    .join('\n');
}

/** File name part of a check: letters, digits, '-' and '_' only. */
function safeName(name) {
  return name.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '') || 'page';
}

/**
 * Checks the page as it is now: saves a full-page screenshot to
 * <repo>/screenshots/<name>-<width>.png, then fails (AssertionError) with a readable list if axe
 * finds WCAG 2.1 A/AA violations, or if the page recorded problems (see `newPage` in browser.js:
 * script errors, CSP refusals, failed sub-resources). Returns the screenshot's path.
 * Options are those of `runAxe`, plus `screenshot: false` to skip the picture.
 */
export async function checkPage(page, name, { screenshot = true, ...axeOptions } = {}) {
  const width = page.viewportSize()?.width ?? 'auto';
  let file = null;
  if (screenshot) {
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    file = path.join(SCREENSHOT_DIR, `${safeName(name)}-${width}.png`);
    await page.screenshot({ path: file, fullPage: true });
  }
  const violations = await runAxe(page, axeOptions);
  const where = `${name} at ${width}px (${page.url()})`;
  if (violations.length > 0) {
    const count = violations.reduce((n, v) => n + v.nodes.length, 0);
    assert.fail(
      `axe found ${violations.length} WCAG violation(s) on ${count} element(s) in ${where}:\n` +
        `${formatViolations(violations)}${file ? `\n  screenshot: ${file}` : ''}`,
    );
  }
  const problems = page.guichetProblems ?? [];
  if (problems.length > 0) {
    assert.fail(`${where} had problems while loading:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
  return file;
}
