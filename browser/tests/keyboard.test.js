// The citizen's submission journey with the keyboard alone: no mouse, no click, no `fill`. Only
// the starting URL is opened with `goto`; from there Tab, typing, arrows, Space and Enter do
// everything: log in, start the service, recover from an error with the error summary's links,
// answer `question-mairie`, send it. Every element the focus lands on must show it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertFocusVisible, DEMO_CITIZEN, focused, navigation, REFERENCE, tabTo } from '../lib/citizen.js';
import { checkPage, useGuichet, VIEWPORTS } from '../lib/harness.js';

const guichet = useGuichet();
const SERVICE = '/saint-aubin-sur-lys/demarches/question-mairie';

const byId = (id) => (f) => f.id === id;
const byText = (tag, text) => (f) => f.tag === tag && f.text === text;

/** Presses `key` on the focused element and waits for the page it leads to. */
function press(page, key) {
  return navigation(page, () => page.keyboard.press(key));
}

for (const viewport of VIEWPORTS) {
  test(`at ${viewport.width}px: log in, answer question-mairie and send it with the keyboard alone`, { timeout: 240_000 }, async () => {
    await guichet.withPage(viewport, async (page) => {
      let response = await page.goto(`/compte/connexion?retour=${SERVICE}`);
      assert.equal(response.status(), 200);

      // The first Tab is the skip link; the login form follows.
      const first = await tabTo(page, () => true, { max: 1 });
      assert.equal(first.text, 'Aller au contenu');
      await tabTo(page, byId('email'), { what: 'the e-mail field' });
      await page.keyboard.type(DEMO_CITIZEN.email);
      await tabTo(page, byId('password'), { max: 1, what: 'the password field, right after the e-mail' });
      await page.keyboard.type(DEMO_CITIZEN.password);
      await tabTo(page, byText('button', 'Se connecter'), { max: 1, what: 'the login button' });
      response = await press(page, 'Enter');
      assert.equal(response.status(), 200);
      assert.equal(new URL(page.url()).pathname, SERVICE, 'back to the service page after login');

      // Start the service.
      await tabTo(page, byText('a', 'Commencer la démarche'), { what: 'the start link' });
      response = await press(page, 'Enter');
      assert.equal(response.status(), 200);
      assert.equal(new URL(page.url()).pathname, `${SERVICE}/formulaire`, 'the form opens with a GET');

      // Continue at once: refused; the error summary's first link leads to the subject field.
      await tabTo(page, byText('button', 'Continuer'), { what: 'the Continue button' });
      response = await press(page, 'Enter');
      assert.equal(response.status(), 422, 'an empty step is refused with 422');
      await checkPage(page, 'keyboard-step-error');
      const errorLink = await tabTo(page, (f) => f.tag === 'a' && /Sujet/.test(f.text), {
        what: 'the error summary link to the subject',
      });
      assert.match(errorLink.text, /obligatoire/);
      await page.keyboard.press('Enter');
      let f = await focused(page);
      assert.equal(f.id, 'sujet', 'Enter on the error link moves the focus to the subject field');
      assertFocusVisible(f, 'on the subject field reached from the error summary');

      // Answer.
      await page.keyboard.type('Inscription sur les listes électorales');
      await tabTo(page, byId('question'), { max: 1, what: 'the question, right after the subject' });
      await page.keyboard.type('Jusqu\'à quand puis-je m\'inscrire pour voter aux prochaines élections ?');
      // The radio group: Tab lands on its first option ("Oui", none being checked yet), the
      // down arrow moves to "Non" and checks it, Space keeps it checked.
      f = await tabTo(page, (x) => x.name === 'rappel', { max: 1, what: 'the call-back radio group' });
      assert.equal(f.value, 'oui');
      await page.keyboard.press('ArrowDown');
      await page.keyboard.press('Space');
      f = await focused(page);
      assert.equal(f.name, 'rappel');
      assert.equal(f.value, 'non', 'the down arrow moves to "Non"');
      assert.ok(f.checked, '"Non" is checked');
      assertFocusVisible(f, 'on the "Non" radio');
      // The phone number is only for "Oui": leave it empty, go on.
      await tabTo(page, byText('button', 'Continuer'), { what: 'the Continue button' });
      response = await press(page, 'Enter');
      assert.equal(response.status(), 200);
      assert.match(new URL(page.url()).pathname, /\/recapitulatif$/);
      const summary = await page.locator('.summary').innerText();
      assert.match(summary, /Inscription sur les listes électorales/);
      assert.match(summary, /Non/);

      // Send from the summary.
      await tabTo(page, byText('button', 'Envoyer ma demande'), { what: 'the send button' });
      response = await press(page, 'Enter');
      assert.equal(response.status(), 200);
      assert.match(new URL(page.url()).pathname, /^\/compte\/demandes\/[^/]+$/);
      const reference = (await page.locator('dd.reference').innerText()).trim();
      assert.match(reference, /^QM-\d{4}-\d{6}$/);
      assert.match(await page.getByRole('status').first().innerText(), REFERENCE);

      // The acknowledgement is reachable by keyboard too.
      await tabTo(page, (x) => x.tag === 'a' && /Accusé de réception/.test(x.text), { what: 'the acknowledgement link' });
      response = await press(page, 'Enter');
      assert.equal(response.status(), 200);
      assert.match(await page.locator('main').innerText(), /Date de réception/);
    });
  });
}
