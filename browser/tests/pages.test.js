// Every page that exists today, in headless Chromium at desktop and phone widths: HTTP status,
// a level-1 heading, axe-core (WCAG 2.1 A/AA), a screenshot; and the keyboard path to the content.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { checkPage, SCREENSHOT_DIR, useGuichet, VIEWPORTS } from '../lib/harness.js';

const guichet = useGuichet();

const PAGES = [
  { name: 'platform-home', path: '/', status: 200 },
  { name: 'epci-home', path: '/cc-val-de-lys/', status: 200 },
  { name: 'commune-home', path: '/saint-aubin-sur-lys/', status: 200 },
  { name: 'catalogue-search', path: '/saint-aubin-sur-lys/demarches?q=acte', status: 200 },
  { name: 'service-anonymous', path: '/saint-aubin-sur-lys/demarches/acte-etat-civil', status: 200 },
  { name: 'login', path: '/compte/connexion', status: 200 },
  { name: 'signup', path: '/compte/inscription', status: 200 },
  { name: 'forgot-password', path: '/compte/mot-de-passe-oublie', status: 200 },
  { name: 'accessibility-statement', path: '/saint-aubin-sur-lys/accessibilite', status: 200 },
  { name: 'terms-of-use', path: '/saint-aubin-sur-lys/conditions-utilisation', status: 200 },
  { name: 'platform-accessibility', path: '/accessibilite', status: 200 },
  { name: 'agent-login', path: '/agents/connexion', status: 200 },
  { name: 'not-found', path: '/inconnue/', status: 404 },
];

for (const { name, path, status } of PAGES) {
  describe(`${name} (${path})`, () => {
    for (const viewport of VIEWPORTS) {
      test(`at ${viewport.width}px: status ${status}, an h1, no WCAG violation`, { timeout: 90_000 }, async () => {
        await guichet.withPage(viewport, async (page) => {
          const response = await page.goto(path, { waitUntil: 'load' });
          assert.ok(response, `no response for ${path}`);
          assert.equal(response.status(), status, `HTTP status of ${path}`);
          const h1 = page.locator('h1');
          assert.equal(await h1.count(), 1, `${path} should have exactly one h1`);
          assert.notEqual((await h1.innerText()).trim(), '', `the h1 of ${path} is empty`);
          await checkPage(page, name);
        });
      });
    }
  });
}

describe('keyboard on the commune home', () => {
  for (const viewport of VIEWPORTS) {
    test(`at ${viewport.width}px: the first Tab reaches a visible skip link to the content`, { timeout: 90_000 }, async () => {
      await guichet.withPage(viewport, async (page) => {
        await page.goto('/saint-aubin-sur-lys/');
        await page.keyboard.press('Tab');
        const focused = await page.evaluate(() => {
          const el = document.activeElement;
          const style = getComputedStyle(el);
          const box = el.getBoundingClientRect();
          return {
            tag: el.tagName.toLowerCase(),
            text: el.textContent.trim(),
            href: el.getAttribute('href'),
            outlineStyle: style.outlineStyle,
            outlineWidth: parseFloat(style.outlineWidth),
            box: { left: box.left, top: box.top, right: box.right, bottom: box.bottom },
            viewport: { width: window.innerWidth, height: window.innerHeight },
          };
        });
        assert.equal(focused.tag, 'a', 'the first Tab should focus a link');
        assert.equal(focused.text, 'Aller au contenu');
        assert.equal(focused.href, '#contenu');
        assert.notEqual(focused.outlineStyle, 'none', 'the focused skip link has no visible outline');
        assert.ok(focused.outlineWidth > 0, `outline width is ${focused.outlineWidth}px`);
        const { box, viewport: vp } = focused;
        assert.ok(
          box.left >= 0 && box.top >= 0 && box.right <= vp.width && box.bottom <= vp.height,
          `the focused skip link should be on screen, it is at ${JSON.stringify(box)}`,
        );
        await page.screenshot({ path: join(SCREENSHOT_DIR, `commune-home-skip-link-${viewport.width}.png`) });

        // Following it moves the focus to the main content.
        await page.keyboard.press('Enter');
        const target = await page.evaluate(() => document.activeElement?.id);
        assert.equal(target, 'contenu', 'Enter on the skip link should move focus to <main id="contenu">');
      });
    });
  }
});

describe('anonymous catalogue and account pages', () => {
  for (const viewport of VIEWPORTS) {
    test(`at ${viewport.width}px: search finds the civil-status service, whose page asks to log in`, { timeout: 90_000 }, async () => {
      await guichet.withPage(viewport, async (page) => {
        await page.goto('/saint-aubin-sur-lys/demarches?q=acte');
        assert.equal(await page.getByLabel('Rechercher une démarche').inputValue(), 'acte', 'the query is kept');
        const result = page.getByRole('link', { name: 'Demande d\'acte d\'état civil' });
        assert.equal(await result.count(), 1, 'the civil-status service is found');
        await Promise.all([page.waitForNavigation(), result.click()]);
        assert.equal(new URL(page.url()).pathname, '/saint-aubin-sur-lys/demarches/acte-etat-civil');
        assert.equal(await page.getByRole('link', { name: 'Commencer la démarche' }).count(), 0, 'no start link when anonymous');
        const login = page.getByRole('link', { name: 'Se connecter pour commencer' });
        assert.match(await login.getAttribute('href'), /^\/compte\/connexion\?retour=/);
        assert.match(
          await page.getByRole('link', { name: 'Créer un compte' }).getAttribute('href'),
          /^\/compte\/inscription\?retour=\/saint-aubin-sur-lys\/demarches\/acte-etat-civil$/,
        );
      });
    });

    test(`at ${viewport.width}px: the account forms label every field`, { timeout: 90_000 }, async () => {
      await guichet.withPage(viewport, async (page) => {
        await page.goto('/compte/connexion');
        assert.equal(await page.getByLabel('Adresse électronique').getAttribute('autocomplete'), 'username');
        assert.equal(await page.getByLabel('Mot de passe', { exact: true }).getAttribute('autocomplete'), 'current-password');
        await page.goto('/compte/inscription');
        for (const label of ['Prénom', 'Adresse électronique', 'Confirmation du mot de passe']) {
          assert.equal(await page.getByLabel(label).count(), 1, `sign-up field "${label}"`);
        }
        assert.equal(await page.getByLabel('Mot de passe', { exact: true }).getAttribute('autocomplete'), 'new-password');
        await page.goto('/compte/mot-de-passe-oublie');
        assert.equal(await page.getByLabel('Adresse électronique').getAttribute('type'), 'email');
      });
    });
  }
});
