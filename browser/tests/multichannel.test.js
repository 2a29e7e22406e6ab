// The multichannel back-office pages in headless Chromium, with axe-core (WCAG 2.1 A/AA) on
// every page reached, error states included, at desktop (1280 px) and phone (375 px) widths.
// The commune agent (password only) works through them:
//  - a counter visit, at each width: the agent opens "Enregistrer une demande" from the
//    contacts, chooses the counter channel and "Poser une question à la mairie", is refused an
//    invalid phone number (422), records the request for the citizen, lands on the request
//    (channel "Accueil") and opens the acknowledgement to print (R112-5) by its link in the
//    timeline;
//  - the contacts, once (the demo's two waiting contacts can be handled only once; every page
//    is checked at both widths by resizing the page): the tabs, the e-mail contact's page, an
//    empty "Rattacher" refused (422), the letter filed with a reason (to "Traités"), and a
//    reply to the e-mail (out of "À traiter");
//  - a posted letter, at each width: the empty form refused (422), then a sender and a scanned
//    PDF make a new contact;
//  - on a request page: "Compter les SMS" for a text with "œ", where the SMS channel is offered.
// No page has any script: the clicks below submit plain HTML forms and follow plain links.
// The tests share one server and run in this order: the contacts test expects the demo's two
// contacts untouched, so it runs before the letters are registered.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { agentLogin, DEMO_AGENTS } from '../lib/agents.js';
import { navigation, REFERENCE } from '../lib/citizen.js';
import { checkPage, useGuichet, VIEWPORTS } from '../lib/harness.js';

const guichet = useGuichet();
const [DESKTOP] = VIEWPORTS;
const COMMUNE_NAME = 'Saint-Aubin-sur-Lys';
const SERVICE = 'Poser une question à la mairie';
const COUNTER_LINK = 'Enregistrer une demande (accueil, téléphone, courrier)';

const pathname = (page) => new URL(page.url()).pathname;

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

/** Reflow (WCAG 1.4.10): nothing makes the page itself scroll sideways. */
async function assertReflows(page) {
  const widths = await page.evaluate(() => ({ page: document.documentElement.scrollWidth, viewport: window.innerWidth }));
  assert.ok(widths.page <= widths.viewport, `${page.url()} is ${widths.page}px wide on a ${widths.viewport}px screen`);
}

/** checkPage at the page's own width, with the reflow check. */
async function check(page, name) {
  await assertReflows(page);
  return checkPage(page, name);
}

/**
 * checkPage at both widths on the page as it is now (an error state stays as it is: the page is
 * resized, not reloaded), then back to the page's own size. For the journeys that can run once.
 */
async function checkAtBothWidths(page, name) {
  const own = page.viewportSize();
  try {
    for (const viewport of VIEWPORTS) {
      await page.setViewportSize(viewport);
      await check(page, name);
    }
  } finally {
    await page.setViewportSize(own);
  }
}

/** Logs the commune agent in (password only) and returns on the inbox. */
async function login(page) {
  const response = await agentLogin(page, DEMO_AGENTS.commune);
  assert.equal(response.status(), 200);
  assert.equal(pathname(page), '/agents/', 'the commune agent needs no second factor');
}

/** The contacts list's items (li of ul.contact-list). */
const contactItems = (page) => page.locator('ul.contact-list > li');

/** Opens a tab of /agents/contacts by its link; returns the response. */
async function openTab(page, label) {
  const tabs = page.getByRole('navigation', { name: 'États des contacts' });
  const response = await navigation(page, () => tabs.getByRole('link', { name: label, exact: true }).click());
  assert.equal(response.status(), 200);
  assert.equal(await tabs.locator('a[aria-current="page"]').innerText(), label, `the "${label}" tab is the current one`);
  return response;
}

for (const viewport of VIEWPORTS) {
  test(`at ${viewport.width}px: the commune agent records a counter visit and prints its acknowledgement`, { timeout: 240_000 }, async (t) => {
    const familyName = `Lefèvre-${viewport.width}`;
    const subject = `Salle des fêtes (${viewport.width} px)`;
    await guichet.withPage(viewport, async (page) => {
      await login(page);

      // From the contacts to the counter form.
      let response = await page.goto('/agents/contacts');
      assert.equal(response.status(), 200);
      assert.equal(await h1(page), 'Contacts');
      response = await navigation(page, () => page.getByRole('link', { name: COUNTER_LINK }).click());
      assert.equal(response.status(), 200);
      assert.equal(pathname(page), '/agents/guichet/nouveau');
      assert.equal(await h1(page), 'Enregistrer une demande pour un usager');
      assert.equal(await page.locator('#formulaire').count(), 0, 'no form before a service is chosen');
      const channels = page.getByRole('group', { name: 'Canal', exact: true });
      for (const label of ['Accueil physique (guichet)', 'Appel téléphonique', 'Courrier reçu']) {
        assert.equal(await channels.getByRole('radio', { name: label, exact: true }).count(), 1, `the channel "${label}" is offered`);
      }
      const demarche = page.getByLabel('Démarche', { exact: true });
      assert.equal(await demarche.evaluate((el) => el.id), 'demarche');
      assert.ok((await page.locator('#demarche optgroup').count()) >= 1, 'the services are grouped by tenant');
      await check(page, 'counter-choose');

      // The counter channel and the commune's service, in its tenant's group.
      await channels.getByRole('radio', { name: 'Accueil physique (guichet)', exact: true }).check();
      const option = page.locator(`#demarche optgroup[label="${COMMUNE_NAME}"] option`).filter({ hasText: SERVICE });
      assert.equal(await option.count(), 1, `"${SERVICE}" is in the ${COMMUNE_NAME} group`);
      await demarche.selectOption(await option.getAttribute('value'));
      response = await navigation(page, () => page.getByRole('button', { name: 'Afficher le formulaire' }).click());
      assert.equal(response.status(), 200);
      const query = new URL(page.url()).searchParams;
      assert.equal(query.get('canal'), 'guichet');
      assert.ok(query.get('demarche'), 'the service is in the address');
      assert.equal(await h1(page), `Enregistrer une demande : ${SERVICE}`);
      assert.ok(await channels.getByRole('radio', { name: 'Accueil physique (guichet)', exact: true }).isChecked(), 'the channel is kept');
      const form = page.locator('#formulaire');
      assert.equal(await form.count(), 1);
      assert.ok(await page.getByRole('button', { name: 'Changer de démarche ou de canal' }).isVisible());
      const today = await page.getByLabel(/^Date de réception/).inputValue();
      assert.match(today, /^\d{4}-\d{2}-\d{2}$/, 'the date of reception defaults to today');
      await check(page, 'counter-form');

      // An invalid phone number: refused with 422, the error named and linked to the field.
      await form.getByLabel('Téléphone', { exact: true }).fill('12');
      response = await navigation(page, () => form.getByRole('button', { name: 'Enregistrer la demande' }).click());
      assert.equal(response.status(), 422, 'an invalid phone number is refused with 422');
      assert.match(await page.title(), /^Erreur/, 'the page title tells of the error');
      const summary = await errorSummary(page);
      assert.match(summary, /« Téléphone de l'usager »/);
      assert.equal(await page.locator('.error-summary a[href="#usager_telephone"]').count(), 1, 'the error links to the field');
      const phone = form.getByLabel('Téléphone', { exact: true });
      assert.equal(await phone.inputValue(), '12', 'what was typed is kept');
      assert.equal(await phone.getAttribute('aria-invalid'), 'true');
      assert.match(await page.locator('#usager_telephone-error').innerText(), /Téléphone de l'usager/);
      assert.equal(await phone.getAttribute('aria-describedby'), 'usager_telephone-error');
      await check(page, 'counter-form-error');

      // The citizen as the agent hears them, and the service's questions.
      await form.getByLabel('Prénom', { exact: true }).fill('Jeanne');
      await form.getByLabel(/^Nom/).fill(familyName);
      await phone.fill('06 12 34 56 78');
      await form.getByLabel(/^Sujet/).fill(subject);
      await form.getByLabel(/^Votre question/).fill('La salle des fêtes peut-elle être louée pour un anniversaire en juin ?');
      await form.getByRole('group', { name: /^Souhaitez-vous être rappelé par téléphone \?/ }).getByRole('radio', { name: 'Oui', exact: true }).check();
      await form.getByLabel(/^Numéro de téléphone/).fill('06 12 34 56 78');
      response = await navigation(page, () => form.getByRole('button', { name: 'Enregistrer la demande' }).click());
      assert.equal(response.status(), 200);
      assert.match(pathname(page), /^\/agents\/demandes\/[^/]+$/);
      assert.equal(new URL(page.url()).searchParams.get('enregistree'), '1');
      const requestPath = pathname(page);
      const title = await h1(page);
      const m = new RegExp(`^(${REFERENCE.source.replace(/\\b/g, '')}) – ${SERVICE}$`).exec(title);
      assert.ok(m, `the request's h1 is "REF – ${SERVICE}", not "${title}"`);
      const reference = m[1];
      assert.equal((await page.locator('dd.channel').innerText()).trim(), 'Accueil');
      assert.match(await page.locator('dd.citizen').innerText(), new RegExp(`Jeanne ${familyName}`));
      const answers = await page.locator('section[aria-labelledby="answers-title"]').innerText();
      assert.ok(answers.includes(subject), 'the answers are recorded');
      await check(page, 'counter-request');

      // The acknowledgement to print, through its link in the timeline.
      const ackLink = page.getByRole('link', { name: 'Accusé de réception à imprimer' });
      assert.equal(await ackLink.count(), 1, 'the acknowledgement is offered in the timeline');
      response = await navigation(page, () => ackLink.click());
      assert.equal(response.status(), 200);
      assert.equal(pathname(page), `${requestPath}/accuse`);
      const ack = await page.locator('.printable').innerText();
      assert.ok(ack.includes('R112-5'), 'the paper acknowledgement cites R112-5');
      assert.ok(ack.includes(reference), `the acknowledgement gives the reference ${reference}`);
      assert.ok(ack.includes(`Jeanne ${familyName}`), 'and greets the citizen');
      assert.equal(await h1(page), `Accusé de réception – ${reference}`);
      assert.equal(await page.locator('h1.no-print').count(), 1, 'left out of the printout, which has its own title');
      await check(page, 'counter-ack');
    });
  });
}

test('the contacts: tabs, an e-mail and a letter; attach refused, the letter filed, the e-mail answered', { timeout: 300_000 }, async () => {
  const email = { who: 'Léa Bernard', subject: 'Bruit la nuit rue des Tilleuls' };
  const letter = { who: 'M. Paul Roux', subject: 'Demande de banc public' };
  const reason = 'Transmis à la commission voirie lors de sa prochaine réunion.';
  await guichet.withPage(DESKTOP, async (page) => {
    await login(page);

    // The list: four tabs, the demo's two waiting contacts in "À traiter".
    let response = await page.goto('/agents/contacts');
    assert.equal(response.status(), 200);
    assert.equal(await h1(page), 'Contacts');
    const tabs = page.getByRole('navigation', { name: 'États des contacts' });
    assert.deepEqual(
      (await tabs.getByRole('link').allInnerTexts()).map((t) => t.trim()),
      ['À traiter', 'Mis de côté', 'Messages automatiques', 'Traités'],
    );
    assert.equal(await tabs.locator('a[aria-current="page"]').innerText(), 'À traiter', 'the first tab is the default');
    const items = contactItems(page);
    assert.equal(await items.count(), 2, 'the demo\'s two contacts are waiting');
    const emailItem = items.filter({ hasText: email.subject });
    const letterItem = items.filter({ hasText: letter.subject });
    assert.equal(await emailItem.count(), 1);
    assert.equal(await letterItem.count(), 1);
    assert.match(await emailItem.locator('.channel').innerText(), /^Courriel$/);
    assert.match(await letterItem.locator('.channel').innerText(), /^Courrier$/);
    assert.ok(await emailItem.getByRole('link', { name: `${email.who} : ${email.subject}` }).isVisible());
    assert.ok(await letterItem.getByRole('link', { name: `${letter.who} : ${letter.subject}` }).isVisible());
    assert.match(await emailItem.locator('.excerpt').innerText(), /chantier démarre à 5 h/);
    assert.ok(await page.getByRole('link', { name: 'Enregistrer un courrier reçu' }).isVisible());
    assert.ok(await page.getByRole('link', { name: COUNTER_LINK }).isVisible());
    await checkAtBothWidths(page, 'contacts-to-handle');

    // The other tabs, empty at first.
    for (const [label, name] of [['Mis de côté', 'contacts-set-aside'], ['Messages automatiques', 'contacts-automatic'], ['Traités', 'contacts-handled']]) {
      await openTab(page, label);
      assert.equal(await contactItems(page).count(), 0, `nothing in "${label}" yet`);
      assert.equal((await page.locator('p.empty').innerText()).trim(), 'Aucun message.');
      await checkAtBothWidths(page, `${name}-empty`);
    }
    await openTab(page, 'À traiter');

    // The e-mail's page: its facts, the message, and the four ways to handle it.
    response = await navigation(page, () => emailItem.getByRole('link').click());
    assert.equal(response.status(), 200);
    assert.match(pathname(page), /^\/agents\/contacts\/[0-9a-f-]{36}$/);
    const emailPath = pathname(page);
    assert.equal(await h1(page), email.subject);
    assert.equal((await page.locator('dd.channel').innerText()).trim(), 'Courriel');
    assert.equal((await page.locator('dd.sender').innerText()).trim(), `${email.who} – lea.bernard@exemple.fr`);
    assert.equal((await page.locator('dd.state').innerText()).trim(), 'à traiter');
    const message = page.getByRole('region', { name: 'Message', exact: true });
    assert.match(await message.locator('p.body').innerText(), /chantier démarre à 5 h du matin/);
    const handle = page.getByRole('region', { name: 'Traiter ce contact' });
    const actions = (await handle.locator('fieldset > legend').allInnerTexts()).map((t) => t.trim());
    assert.deepEqual(actions, [
      'Répondre par courriel à lea.bernard@exemple.fr',
      'Rattacher à une demande existante',
      'Créer une demande',
      'Classer sans suite',
    ]);
    const create = handle.getByRole('group', { name: 'Créer une demande' });
    assert.ok((await create.getByLabel('Démarche').locator('option').allInnerTexts()).includes(SERVICE), 'the commune\'s services are offered');
    await checkAtBothWidths(page, 'contact-email');

    // "Rattacher" without a reference: refused with 422, nothing changes.
    const attach = handle.getByRole('group', { name: 'Rattacher à une demande existante' });
    assert.equal(await attach.getByLabel('Référence de la demande').inputValue(), '');
    response = await navigation(page, () => attach.getByRole('button', { name: 'Rattacher' }).click());
    assert.equal(response.status(), 422, 'attaching to no reference is refused with 422');
    assert.equal(pathname(page), `${emailPath}/rattacher`);
    assert.match(await errorSummary(page), /« Référence de la demande »/);
    assert.equal(await h1(page), email.subject);
    assert.equal((await page.locator('dd.state').innerText()).trim(), 'à traiter', 'still waiting');
    await checkAtBothWidths(page, 'contact-email-attach-error');

    // The letter: no reply form (no electronic address), filed with a reason.
    response = await page.goto('/agents/contacts');
    assert.equal(response.status(), 200);
    response = await navigation(page, () => contactItems(page).filter({ hasText: letter.subject }).getByRole('link').click());
    assert.equal(response.status(), 200);
    assert.equal(await h1(page), letter.subject);
    assert.equal((await page.locator('dd.channel').innerText()).trim(), 'Courrier');
    assert.equal(await page.getByRole('button', { name: 'Envoyer la réponse' }).count(), 0, 'a letter cannot be answered from here');
    await checkAtBothWidths(page, 'contact-letter');
    const file = page.getByRole('group', { name: 'Classer sans suite' });
    await file.getByLabel('Motif du classement').fill(reason);
    response = await navigation(page, () => file.getByRole('button', { name: 'Classer' }).click());
    assert.equal(response.status(), 200);
    assert.equal(pathname(page), '/agents/contacts');
    assert.equal(await contactItems(page).filter({ hasText: letter.subject }).count(), 0, 'the letter left "À traiter"');
    assert.equal(await contactItems(page).count(), 1, 'the e-mail still waits');
    await openTab(page, 'Traités');
    const filed = contactItems(page).filter({ hasText: letter.subject });
    assert.equal(await filed.count(), 1, 'the letter is in "Traités"');
    assert.match(await filed.locator('.meta').innerText(), /classé$/);
    await checkAtBothWidths(page, 'contacts-handled-filed');
    response = await navigation(page, () => filed.getByRole('link').click());
    assert.equal(response.status(), 200);
    assert.equal(await h1(page), letter.subject);
    assert.equal((await page.locator('dd.state').innerText()).trim(), 'classé');
    assert.equal(await page.getByRole('region', { name: 'Traiter ce contact' }).count(), 0, 'nothing more to do');
    await checkAtBothWidths(page, 'contact-letter-filed');

    // Answer the e-mail: it leaves "À traiter" for "Traités".
    response = await page.goto(emailPath);
    assert.equal(response.status(), 200);
    const reply = page.getByRole('group', { name: 'Répondre par courriel à lea.bernard@exemple.fr' });
    await reply.getByLabel('Réponse', { exact: true }).fill('Bonjour, les travaux bruyants sont interdits avant 7 h : la police municipale passera demain.');
    response = await navigation(page, () => reply.getByRole('button', { name: 'Envoyer la réponse' }).click());
    assert.equal(response.status(), 200);
    assert.equal(pathname(page), '/agents/contacts');
    assert.equal(await tabs.locator('a[aria-current="page"]').innerText(), 'À traiter');
    assert.equal(await contactItems(page).count(), 0, 'nothing waits any more');
    assert.equal((await page.locator('p.empty').innerText()).trim(), 'Aucun message.');
    await checkAtBothWidths(page, 'contacts-to-handle-empty');
    await openTab(page, 'Traités');
    const answered = contactItems(page).filter({ hasText: email.subject });
    assert.equal(await answered.count(), 1, 'the e-mail is in "Traités"');
    assert.match(await answered.locator('.meta').innerText(), /répondu$/);
    assert.equal(await contactItems(page).count(), 2);

    // Its page now says so, and offers nothing more to do.
    response = await navigation(page, () => answered.getByRole('link').click());
    assert.equal(response.status(), 200);
    assert.equal((await page.locator('dd.state').innerText()).trim(), 'répondu');
    assert.equal(await page.getByRole('region', { name: 'Traiter ce contact' }).count(), 0);
    await checkAtBothWidths(page, 'contact-email-answered');
  });
});

for (const viewport of VIEWPORTS) {
  test(`at ${viewport.width}px: the commune agent registers a posted letter`, { timeout: 240_000 }, async () => {
    const sender = `Mme Odile Garnier (${viewport.width} px)`;
    await guichet.withPage(viewport, async (page) => {
      await login(page);
      let response = await page.goto('/agents/contacts');
      assert.equal(response.status(), 200);
      response = await navigation(page, () => page.getByRole('link', { name: 'Enregistrer un courrier reçu' }).click());
      assert.equal(response.status(), 200);
      assert.equal(pathname(page), '/agents/courrier/nouveau');
      assert.equal(await h1(page), 'Enregistrer un courrier reçu');
      assert.equal(await page.getByLabel(/^Collectivité destinataire/).locator('option:checked').innerText(), COMMUNE_NAME);
      await check(page, 'letter-form');

      // Nothing filled in: refused with 422, both missing fields named and linked.
      response = await navigation(page, () => page.getByRole('button', { name: 'Enregistrer le courrier' }).click());
      assert.equal(response.status(), 422, 'an empty letter is refused with 422');
      assert.equal(pathname(page), '/agents/courrier/nouveau');
      assert.match(await page.title(), /^Erreur/);
      const summary = await errorSummary(page);
      assert.match(summary, /« Expéditeur »/);
      assert.match(summary, /« Courrier numérisé »/);
      assert.equal(await page.locator('.error-summary a[href="#expediteur"]').count(), 1);
      assert.equal(await page.locator('.error-summary a[href="#scan"]').count(), 1);
      assert.equal(await page.getByLabel(/^Expéditeur/).getAttribute('aria-invalid'), 'true');
      assert.equal(await page.getByLabel(/^Courrier numérisé/).getAttribute('aria-invalid'), 'true');
      await check(page, 'letter-form-error');

      // A sender and the scanned letter: a new contact, shown at once.
      await page.getByLabel(/^Expéditeur/).fill(sender);
      await page.getByLabel(/^Courrier numérisé/).setInputFiles({
        name: 'lettre.pdf',
        mimeType: 'application/pdf',
        buffer: Buffer.from('%PDF-1.4\n%test\n'),
      });
      response = await navigation(page, () => page.getByRole('button', { name: 'Enregistrer le courrier' }).click());
      assert.equal(response.status(), 200);
      assert.match(pathname(page), /^\/agents\/contacts\/[0-9a-f-]{36}$/);
      const contactPath = pathname(page);
      assert.equal(await h1(page), 'Message', 'a letter without subject');
      assert.equal((await page.locator('dd.channel').innerText()).trim(), 'Courrier');
      assert.equal((await page.locator('dd.sender').innerText()).trim(), `${sender} – ${sender}`);
      assert.equal((await page.locator('dd.state').innerText()).trim(), 'à traiter');
      const files = page.getByRole('region', { name: 'Message', exact: true }).locator('ul.files');
      assert.equal(await files.getByRole('link', { name: 'lettre.pdf' }).count(), 1, 'the scan is attached');
      await check(page, 'letter-contact');

      // And it waits in the list.
      response = await page.goto('/agents/contacts');
      assert.equal(response.status(), 200);
      const item = contactItems(page).filter({ hasText: sender });
      assert.equal(await item.count(), 1, 'the new letter waits in "À traiter"');
      assert.equal(await item.getByRole('link').getAttribute('href'), contactPath);
    });
  });
}

test('on a request page: the reply offers its channels, and "Compter les SMS" counts a text with "œ"', { timeout: 240_000 }, async (t) => {
  // The text: 64 characters, one of them outside GSM-7, so one UCS-2 SMS.
  const text = 'Votre dossier est complet : le cœur du village sera fermé lundi.';
  for (const viewport of VIEWPORTS) {
    await guichet.withPage(viewport, async (page) => {
      await login(page);
      const first = page.locator('table.inbox tbody tr').first().getByRole('link', { name: REFERENCE });
      assert.equal(await first.count(), 1, 'the inbox lists requests');
      const reference = (await first.innerText()).trim();
      let response = await navigation(page, () => first.click());
      assert.equal(response.status(), 200);
      assert.match(await h1(page), new RegExp(`^${reference} – `));
      const requestPath = pathname(page);
      const form = page.locator('#reponse-form');
      const channels = form.getByRole('group', { name: 'Canal de la réponse' });
      assert.equal(await channels.count(), 1, 'the reply form has a "Canal de la réponse" group');
      const offered = (await channels.getByRole('radio').evaluateAll((els) => els.map((e) => e.labels[0].innerText.trim())));
      assert.ok(offered.length >= 1, 'at least one reply channel');
      assert.ok(offered.includes('Courrier postal (lettre PDF à imprimer)'), 'a letter is always possible');
      assert.equal(await channels.getByRole('radio', { checked: true }).count(), 1, 'one channel is chosen by default');
      await check(page, 'request-reply-form');

      const sms = channels.getByRole('radio', { name: /^SMS au / });
      if ((await sms.count()) === 0) {
        t.diagnostic(`${reference}: no SMS channel offered (${offered.join(' | ')}); SMS count skipped at ${viewport.width}px`);
        return;
      }
      await sms.check();
      await form.getByLabel(/^Réponse/).fill(text);
      const entries = await page.locator('ol.agent-timeline > li').count();
      response = await navigation(page, () => form.getByRole('button', { name: 'Compter les SMS' }).click());
      assert.equal(response.status(), 200);
      const info = page.locator('#info');
      assert.equal(await info.count(), 1, 'the count is shown');
      assert.equal(await info.getAttribute('role'), 'status');
      const said = (await info.innerText()).trim();
      assert.match(said, /SMS/);
      assert.match(said, new RegExp(`${[...text].length} caractère\\(s\\), 1 SMS \\(codage UCS-2`), `"œ" needs UCS-2: ${said}`);
      assert.match(said, /Rien n'a été envoyé/);
      assert.equal(await form.getByLabel(/^Réponse/).inputValue(), text, 'the draft is kept');
      assert.ok(await channels.getByRole('radio', { name: /^SMS au / }).isChecked(), 'the SMS channel stays chosen');
      assert.equal(await page.locator('ol.agent-timeline > li').count(), entries, 'nothing was sent');
      assert.match(pathname(page), new RegExp(`^${requestPath}(/reponse)?$`));
      await check(page, 'request-sms-count');
    });
  }
});
