// The agents' back-office in headless Chromium, with axe-core on every page reached, the error
// states included:
//  - on a desktop (1280 px): the demo citizen asks the mairie a question; in another browser
//    context the commune's administrator logs in, enrols a TOTP second factor (a wrong code
//    first), finds the request in the inbox by its reference, saves the search as a view, opens
//    the request, is refused "Accepter" without a message, takes it in charge, replies, adds an
//    internal note and accepts it; logs out, and logs in again with a code (a wrong one first).
//    The citizen then reads the reply and the new status on their request page, and never the
//    internal note;
//  - on a phone (375 px): the commune agent (password only) opens the inbox and a request;
//  - at both widths, with the keyboard alone: the commune agent logs in, opens the first request
//    of the inbox and takes it in charge, with a visible focus at every stop.
// Each test has the citizen send the requests it works on, so that it does not depend on the
// demo's own requests: sent last, they head the inbox (newest first).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { agentLogin, DEMO_AGENTS, fillAgentLogin, totpCode, wrongTotpCode } from '../lib/agents.js';
import { assertFocusVisible, DEMO_CITIZEN, fillLogin, focused, navigation, REFERENCE, tabTo } from '../lib/citizen.js';
import { checkPage, useGuichet, VIEWPORTS } from '../lib/harness.js';

const guichet = useGuichet();
const [DESKTOP, PHONE] = VIEWPORTS;
const COMMUNE = '/saint-aubin-sur-lys';

/** The opened page has exactly one non-empty h1 and returns its text. */
async function h1(page) {
  const heading = page.locator('h1');
  assert.equal(await heading.count(), 1, `exactly one h1 expected on ${page.url()}`);
  const text = (await heading.innerText()).trim();
  assert.notEqual(text, '', `empty h1 on ${page.url()}`);
  return text;
}

/** The page's error summary (one, role=alert) and its text. */
async function errorSummary(page) {
  const summary = page.locator('.error-summary');
  assert.equal(await summary.count(), 1, `one error summary expected on ${page.url()}`);
  assert.equal(await summary.getAttribute('role'), 'alert');
  return (await summary.innerText()).trim();
}

const pathname = (page) => new URL(page.url()).pathname;

/**
 * The citizen sends `question-mairie` from the commune portal, logging in on the way if needed;
 * returns the request's reference and the path of its page in the citizen's space.
 */
async function askTheMairie(page, { subject, question }) {
  let response = await page.goto(`${COMMUNE}/`);
  assert.equal(response.status(), 200);
  await navigation(page, () => page.getByRole('link', { name: 'Poser une question à la mairie' }).click());
  const login = page.getByRole('link', { name: 'Se connecter pour commencer' });
  if ((await login.count()) > 0) {
    await navigation(page, () => login.click());
    response = await fillLogin(page, DEMO_CITIZEN);
    assert.equal(response.status(), 200);
    assert.equal(pathname(page), `${COMMUNE}/demarches/question-mairie`, 'back to the service after login');
  }
  response = await navigation(page, () => page.getByRole('link', { name: 'Commencer la démarche' }).click());
  assert.equal(response.status(), 200);
  await page.getByLabel(/^Sujet/).fill(subject);
  await page.getByLabel(/^Votre question/).fill(question);
  await page.getByRole('group', { name: /rappelé par téléphone/ }).getByRole('radio', { name: 'Non' }).check();
  response = await navigation(page, () => page.getByRole('button', { name: 'Continuer' }).click());
  assert.equal(response.status(), 200);
  assert.match(pathname(page), /\/recapitulatif$/);
  response = await navigation(page, () => page.getByRole('button', { name: 'Envoyer ma demande' }).click());
  assert.equal(response.status(), 200);
  assert.match(pathname(page), /^\/compte\/demandes\/[^/]+$/);
  const reference = (await page.locator('dd.reference').innerText()).trim();
  assert.match(reference, /^QM-\d{4}-\d{6}$/);
  return { reference, path: pathname(page) };
}

/** In a fresh context, the demo citizen sends a question; returns its reference. */
async function citizenAsks(subject) {
  return guichet.withPage(DESKTOP, (page) =>
    askTheMairie(page, { subject, question: `${subject} : merci de me répondre.` }),
  );
}

/** The action form (fieldset) of a workflow transition on the agent's request page. */
const actionForm = (page, label) => page.getByRole('group', { name: label, exact: true });

/** Submits a workflow action, with an optional message; returns the response. */
async function act(page, label, message) {
  const form = actionForm(page, label);
  assert.equal(await form.count(), 1, `the action "${label}" is offered on ${page.url()}`);
  if (message !== undefined) await form.getByLabel(/^Message à l'usager/).fill(message);
  return navigation(page, () => form.getByRole('button', { name: label, exact: true }).click());
}

test('on a desktop: the administrator enrols TOTP, finds, answers and accepts a request; the citizen reads the answer', { timeout: 300_000 }, async () => {
  const reply = 'Bonjour, la mairie est ouverte le samedi de 9 h à 12 h, y compris en août.';
  const note = 'NOTE-INTERNE : vérifier le planning d\'août avec le secrétariat.';
  const decision = 'Votre demande est acceptée : les horaires d\'été sont affichés en mairie.';

  // The citizen's context stays open: they come back to their request at the end.
  const citizen = await guichet.newPage(DESKTOP);
  const agent = await guichet.newPage(DESKTOP);
  try {
    const { reference, path: citizenPath } = await askTheMairie(citizen, {
      subject: 'Horaires de la mairie en août',
      question: 'La mairie est-elle ouverte le samedi matin pendant les congés d\'été ?',
    });

    // Password: an administrator without a second factor must enrol one first.
    let response = await agent.goto('/agents/connexion');
    assert.equal(response.status(), 200);
    assert.equal(await h1(agent), 'Connexion des agents');
    await checkPage(agent, 'backoffice-login');
    response = await fillAgentLogin(agent, DEMO_AGENTS.admin);
    assert.equal(response.status(), 200);
    assert.equal(pathname(agent), '/agents/totp');
    assert.equal(await h1(agent), 'Activer la double authentification');
    assert.match(await agent.locator('.notice').innerText(), /obligatoire pour les administrateurs/);
    const secret = await agent.locator('input[type=hidden][name=secret]').inputValue();
    assert.match(secret, /^[A-Z2-7]{32}$/, 'a 160-bit base32 secret');
    assert.equal((await agent.locator('code.secret').innerText()).trim(), secret, 'the secret is shown');
    await checkPage(agent, 'backoffice-totp');

    // A wrong code: refused, same secret, the error links to the field.
    await agent.getByLabel('Code à 6 chiffres').fill(wrongTotpCode(secret));
    response = await navigation(agent, () => agent.getByRole('button', { name: 'Activer' }).click());
    assert.equal(response.status(), 422, 'a wrong code is refused with 422');
    assert.match(await errorSummary(agent), /code incorrect/);
    assert.equal(await agent.locator('.error-summary a').getAttribute('href'), '#code');
    assert.equal(await agent.locator('input[name=secret]').inputValue(), secret, 'the secret is kept');
    await checkPage(agent, 'backoffice-totp-error');

    // The right code: enrolled, on to the inbox, which lists the new request.
    await agent.getByLabel('Code à 6 chiffres').fill(totpCode(secret));
    response = await navigation(agent, () => agent.getByRole('button', { name: 'Activer' }).click());
    assert.equal(response.status(), 200);
    assert.equal(pathname(agent), '/agents/');
    assert.match(await h1(agent), /^Demandes/);
    assert.match(await agent.locator('.agent-bar').innerText(), new RegExp(DEMO_AGENTS.admin.name));
    assert.equal(await agent.locator('.agent-bar .notice').count(), 0, 'no invitation to enrol a second factor any more');
    assert.equal(await agent.locator('table.inbox tbody tr').filter({ hasText: reference }).count(), 1);
    await checkPage(agent, 'backoffice-inbox');

    // Search by reference.
    await agent.getByLabel('Rechercher (référence, nom, contenu)').fill(reference);
    response = await navigation(agent, () => agent.getByRole('button', { name: 'Filtrer' }).click());
    assert.equal(response.status(), 200);
    assert.equal(new URL(agent.url()).searchParams.get('q'), reference);
    const rows = agent.locator('table.inbox tbody tr');
    assert.equal(await rows.count(), 1, `the search for ${reference} finds one request`);
    assert.match(await rows.innerText(), /Camille Martin/);
    assert.match(await rows.innerText(), /Poser une question à la mairie/);
    assert.match(await agent.locator('h1 .count').innerText(), /\(1\)/);
    assert.equal(await agent.getByLabel('Rechercher (référence, nom, contenu)').inputValue(), reference, 'the search is kept');
    await checkPage(agent, 'backoffice-inbox-search');

    // More filters: open requests of the commune, oldest first; and save them as a view.
    await agent.getByLabel('Collectivité').selectOption({ label: 'Saint-Aubin-sur-Lys' });
    await agent.getByLabel('État').selectOption({ label: 'À traiter' });
    await agent.getByLabel('Ordre').selectOption({ label: 'Plus anciennes d\'abord' });
    response = await navigation(agent, () => agent.getByRole('button', { name: 'Filtrer' }).click());
    assert.equal(response.status(), 200);
    assert.equal(new URL(agent.url()).searchParams.get('etat'), 'open');
    assert.equal(await rows.count(), 1);
    await agent.getByLabel('Enregistrer ces filtres sous le nom').fill('Ma question d\'août');
    response = await navigation(agent, () => agent.getByRole('button', { name: 'Enregistrer la vue' }).click());
    assert.equal(response.status(), 200);
    const view = agent.getByRole('navigation', { name: 'Vues enregistrées' }).getByRole('link', { name: /Ma question d'août/ });
    assert.equal(await view.count(), 1, 'the saved view is listed');
    assert.match(await view.innerText(), /\(1\)/, 'with its counter');
    assert.ok(await agent.getByRole('link', { name: 'Exporter cette vue (CSV)' }).isVisible());
    await checkPage(agent, 'backoffice-inbox-filters');

    // The request page.
    response = await navigation(agent, () => rows.getByRole('link', { name: reference }).click());
    assert.equal(response.status(), 200);
    assert.match(pathname(agent), /^\/agents\/demandes\/[^/]+$/);
    const requestPath = pathname(agent);
    assert.match(await h1(agent), new RegExp(`^${reference} – Poser une question à la mairie$`));
    const status = agent.locator('dd.status');
    assert.equal((await status.innerText()).trim(), 'Reçue');
    for (const label of ['Prendre en charge', 'Demander des compléments', 'Accepter', 'Refuser', 'Clôturer']) {
      assert.equal(await actionForm(agent, label).count(), 1, `the action "${label}" is offered from "Reçue"`);
    }
    const completion = actionForm(agent, 'Demander des compléments');
    assert.equal(await completion.getByLabel('Pièces et informations manquantes').count(), 1);
    assert.equal(await completion.getByLabel('Date limite pour compléter').getAttribute('type'), 'date');
    assert.match(await agent.locator('.request-facts').innerText(), /Camille Martin/);
    await checkPage(agent, 'backoffice-request');

    // "Accepter" needs a message: refused, nothing changes.
    response = await act(agent, 'Accepter');
    assert.equal(response.status(), 422, 'accepting without a message is refused with 422');
    assert.match(await errorSummary(agent), /message est obligatoire/);
    assert.equal((await status.innerText()).trim(), 'Reçue', 'the status is unchanged');
    await checkPage(agent, 'backoffice-request-error');

    // Take it in charge.
    response = await act(agent, 'Prendre en charge');
    assert.equal(response.status(), 200);
    assert.equal(pathname(agent), requestPath);
    assert.equal((await status.innerText()).trim(), 'En cours d\'instruction');
    assert.equal(await actionForm(agent, 'Prendre en charge').count(), 0, 'no longer offered');

    // Reply to the citizen, by e-mail (the default for a request made online by a citizen with
    // an address).
    const channel = agent.getByRole('group', { name: 'Canal de la réponse' });
    assert.ok(await channel.getByRole('radio', { name: /^Courriel/ }).isChecked(), 'e-mail is the default channel');
    await agent.getByRole('textbox', { name: /^Réponse \(visible aussi dans l'espace de l'usager\)/ }).fill(reply);
    response = await navigation(agent, () => agent.getByRole('button', { name: 'Envoyer la réponse' }).click());
    assert.equal(response.status(), 200);
    const timeline = agent.locator('ol.agent-timeline > li');
    const replied = timeline.filter({ hasText: 'Réponse à l\'usager' });
    assert.equal(await replied.count(), 1);
    assert.equal((await replied.locator('p.body').innerText()).trim(), reply);

    // An internal note: in the agents' timeline, marked internal.
    await agent.getByRole('textbox', { name: /^Note interne/ }).fill(note);
    response = await navigation(agent, () => agent.getByRole('button', { name: 'Ajouter la note' }).click());
    assert.equal(response.status(), 200);
    const noted = agent.locator('ol.agent-timeline > li.internal').filter({ hasText: note });
    assert.equal(await noted.count(), 1, 'the note is an internal entry');
    assert.equal((await noted.locator('.tag').textContent()).trim(), 'interne');

    // Accept, with a message.
    response = await act(agent, 'Accepter', decision);
    assert.equal(response.status(), 200);
    assert.equal((await status.innerText()).trim(), 'Acceptée');
    const accepted = timeline.filter({ hasText: 'Statut : Acceptée' });
    assert.equal(await accepted.count(), 1);
    assert.equal((await accepted.locator('p.body').innerText()).trim(), decision);
    assert.equal(await actionForm(agent, 'Accepter').count(), 0, 'no longer offered');
    assert.equal(await actionForm(agent, 'Clôturer').count(), 1);
    await checkPage(agent, 'backoffice-request-after-actions');

    // Log out (from the inbox's agent bar): the back-office is closed again.
    await navigation(agent, () => agent.getByRole('navigation', { name: 'Fil d\'Ariane' }).getByRole('link', { name: 'Demandes' }).click());
    response = await navigation(agent, () => agent.getByRole('button', { name: 'Se déconnecter', exact: true }).click());
    assert.equal(response.status(), 200);
    assert.equal(pathname(agent), '/agents/connexion');
    response = await agent.goto('/agents/');
    assert.equal(pathname(agent), '/agents/connexion', 'the inbox needs a login again');

    // Log in again: the password, then a code.
    response = await fillAgentLogin(agent, DEMO_AGENTS.admin);
    assert.equal(response.status(), 200);
    assert.equal(pathname(agent), '/agents/code');
    assert.equal(await h1(agent), 'Code de vérification');
    await checkPage(agent, 'backoffice-code');
    await agent.getByLabel('Code à 6 chiffres').fill(wrongTotpCode(secret));
    response = await navigation(agent, () => agent.getByRole('button', { name: 'Valider' }).click());
    assert.equal(response.status(), 422, 'a wrong code is refused with 422');
    assert.match(await errorSummary(agent), /code incorrect/);
    assert.equal(await agent.getByLabel('Code à 6 chiffres').getAttribute('aria-invalid'), 'true');
    await checkPage(agent, 'backoffice-code-error');
    await agent.getByLabel('Code à 6 chiffres').fill(totpCode(secret));
    response = await navigation(agent, () => agent.getByRole('button', { name: 'Valider' }).click());
    assert.equal(response.status(), 200);
    assert.equal(pathname(agent), '/agents/');
    assert.equal(await agent.locator('table.inbox tbody tr').filter({ hasText: reference }).count(), 1);

    // The citizen reloads their request: the reply and the decision, never the note.
    assert.equal(pathname(citizen), citizenPath);
    response = await citizen.reload();
    assert.equal(response.status(), 200);
    assert.equal((await citizen.locator('dd.status').innerText()).trim(), 'Acceptée');
    const entries = citizen.locator('ol.timeline > li');
    const message = entries.filter({ hasText: 'Message du service' });
    assert.equal(await message.count(), 1, 'the reply is in the citizen\'s timeline');
    assert.equal((await message.locator('p.body').innerText()).trim(), reply);
    const decided = entries.filter({ hasText: 'Statut : Acceptée' });
    assert.equal(await decided.count(), 1, 'the new status is in the citizen\'s timeline');
    assert.equal((await decided.locator('p.body').innerText()).trim(), decision);
    const everything = await citizen.locator('body').innerText();
    assert.ok(!everything.includes('NOTE-INTERNE'), 'the internal note is never shown to the citizen');
    assert.ok(!everything.includes('Note interne'), 'nor its entry');
    assert.ok(!(await citizen.content()).includes('NOTE-INTERNE'), 'not even in the HTML');
    await checkPage(citizen, 'backoffice-citizen-request');
  } finally {
    await agent.context().close();
    await citizen.context().close();
  }
});

test('on a phone: the commune agent logs in with a password alone, opens the inbox and a request', { timeout: 240_000 }, async () => {
  const { reference } = await citizenAsks('Cantine scolaire à la rentrée');
  await guichet.withPage(PHONE, async (page) => {
    let response = await agentLogin(page, DEMO_AGENTS.commune);
    assert.equal(response.status(), 200);
    assert.equal(pathname(page), '/agents/', 'no second factor asked of a commune agent without one');
    assert.match(await h1(page), /^Demandes/);
    assert.match(await page.locator('.agent-bar .notice').innerText(), /Activez la double authentification/);
    const row = page.locator('table.inbox tbody tr').filter({ hasText: reference });
    assert.equal(await row.count(), 1, `the inbox lists ${reference}`);
    // Reflow (WCAG 1.4.10): the ten-column table scrolls inside its own box, not the page.
    const widths = await page.evaluate(() => ({ page: document.documentElement.scrollWidth, viewport: window.innerWidth }));
    assert.ok(widths.page <= widths.viewport, `the inbox is ${widths.page}px wide on a ${widths.viewport}px screen`);
    await checkPage(page, 'backoffice-inbox');

    response = await navigation(page, () => row.getByRole('link', { name: reference }).click());
    assert.equal(response.status(), 200);
    assert.match(await h1(page), new RegExp(`^${reference} – `));
    assert.equal((await page.locator('dd.status').innerText()).trim(), 'Reçue');
    assert.equal(await actionForm(page, 'Prendre en charge').count(), 1);
    await checkPage(page, 'backoffice-request');
  });
});

const byId = (id) => (f) => f.id === id;
const byText = (tag, text) => (f) => f.tag === tag && f.text === text;

/** Presses `key` on the focused element and waits for the page it leads to. */
function press(page, key) {
  return navigation(page, () => page.keyboard.press(key));
}

for (const viewport of VIEWPORTS) {
  test(`at ${viewport.width}px: the commune agent takes the first request of the inbox in charge with the keyboard alone`, { timeout: 240_000 }, async () => {
    const { reference } = await citizenAsks(`Question au clavier (${viewport.width} px)`);
    await guichet.withPage(viewport, async (page) => {
      let response = await page.goto('/agents/connexion');
      assert.equal(response.status(), 200);

      // Log in: skip link first, then the form.
      const first = await tabTo(page, () => true, { max: 1 });
      assert.equal(first.text, 'Aller au contenu');
      await tabTo(page, byId('email'), { what: 'the e-mail field' });
      await page.keyboard.type(DEMO_AGENTS.commune.email);
      await tabTo(page, byId('password'), { max: 1, what: 'the password field, right after the e-mail' });
      await page.keyboard.type(DEMO_AGENTS.commune.password);
      await tabTo(page, byText('button', 'Se connecter'), { max: 1, what: 'the login button' });
      response = await press(page, 'Enter');
      assert.equal(response.status(), 200);
      assert.equal(pathname(page), '/agents/');

      // The inbox, newest first: through the agent bar, the filters and the saved-view form to
      // the first request's link; every stop shows its focus.
      const link = await tabTo(page, (f) => f.tag === 'a' && REFERENCE.test(f.text), {
        max: 40,
        what: 'the first request of the inbox',
      });
      assert.equal(link.text, reference, 'the first request is the newest one');
      response = await press(page, 'Enter');
      assert.equal(response.status(), 200);
      assert.match(pathname(page), /^\/agents\/demandes\/[^/]+$/);
      assert.equal((await page.locator('dd.status').innerText()).trim(), 'Reçue');

      // "Prendre en charge", with a message typed in its fieldset.
      await tabTo(page, byId('message-start'), { what: 'the message of "Prendre en charge"' });
      await page.keyboard.type('Votre demande est entre les mains du secrétariat.');
      await tabTo(page, byText('button', 'Prendre en charge'), { max: 1, what: 'the "Prendre en charge" button' });
      response = await press(page, 'Enter');
      assert.equal(response.status(), 200);
      assert.match(pathname(page), /^\/agents\/demandes\/[^/]+$/);
      assert.equal((await page.locator('dd.status').innerText()).trim(), 'En cours d\'instruction');
      const entry = page.locator('ol.agent-timeline > li').filter({ hasText: 'Statut : En cours d\'instruction' });
      assert.equal(await entry.count(), 1);
      assert.match(await entry.innerText(), /entre les mains du secrétariat/);

      // And the focus keeps showing on the page after the action.
      await tabTo(page, byId('reponse'), { what: 'the reply field' });
      assertFocusVisible(await focused(page), 'on the reply field');
    });
  });
}
