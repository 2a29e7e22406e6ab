// The accessibility check must be able to fail: a page with an unlabelled text field
// (fixtures/broken.html) has to be reported by axe, and checkPage has to throw on it.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { checkPage, launchBrowser, REPO_ROOT, runAxe, VIEWPORTS, withPage } from '../lib/harness.js';

const BROKEN = pathToFileURL(path.join(REPO_ROOT, 'browser', 'fixtures', 'broken.html')).href;

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

test('axe reports the unlabelled input of the broken fixture', { timeout: 60_000 }, async () => {
  await withPage(browser, VIEWPORTS[0], async (page) => {
    await page.goto(BROKEN);
    const violations = await runAxe(page);
    const label = violations.find((v) => v.id === 'label');
    assert.ok(label, `expected a "label" violation, got: ${violations.map((v) => v.id).join(', ') || 'none'}`);
    assert.equal(label.impact, 'critical');
    assert.deepEqual(
      label.nodes.map((n) => n.target),
      ['input'],
    );
  });
});

test('checkPage fails with a readable list on the broken fixture', { timeout: 60_000 }, async () => {
  await withPage(browser, VIEWPORTS[1], async (page) => {
    await page.goto(BROKEN);
    await assert.rejects(
      checkPage(page, 'fixture-broken'),
      (err) => {
        assert.ok(err instanceof assert.AssertionError, `expected an AssertionError, got ${err}`);
        assert.match(err.message, /\[critical\] label: Form elements must have labels/);
        assert.match(err.message, /- input\n\s+<input type="text"/);
        return true;
      },
    );
  });
});

test('checkPage fails when the page breaks its Content-Security-Policy', { timeout: 60_000 }, async () => {
  await withPage(browser, VIEWPORTS[0], async (page) => {
    // Axe-clean, but its inline script is refused by the policy, as on Guichet's own pages.
    await page.setContent(
      '<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8">' +
        `<meta http-equiv="Content-Security-Policy" content="script-src 'self'">` +
        '<title>Script refusé</title></head><body><main><h1>Script refusé</h1>' +
        '<script>document.title = "exécuté";</script></main></body></html>',
    );
    await assert.rejects(checkPage(page, 'fixture-csp', { screenshot: false }), (err) => {
      assert.ok(err instanceof assert.AssertionError, `expected an AssertionError, got ${err}`);
      assert.match(err.message, /had problems while loading/);
      assert.match(err.message, /Content Security Policy/);
      return true;
    });
  });
});
