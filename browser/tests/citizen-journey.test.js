// The citizen's journey on a commune portal, in headless Chromium, with axe-core on every page
// reached, the error states included:
//  - on a phone (375 px): sign-up from a service page, e-mail verification through the demo
//    mailbox, a problem report (`signalement`, an EPCI service offered on the commune portal)
//    with a refused empty description, a refused mistyped file and an accepted PNG photo, sent
//    from its one page (the form has no summary), the request page, its acknowledgement
//    document and "my space";
//  - on a desktop (1280 px): the demo citizen logs in and asks the mairie a question.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DEMO_CITIZEN, fillLogin, navigation, pngBytes, REFERENCE, uploadDir } from '../lib/citizen.js';
import { checkPage, useGuichet, VIEWPORTS } from '../lib/harness.js';

const guichet = useGuichet();
const [DESKTOP, PHONE] = VIEWPORTS;
const COMMUNE = '/saint-aubin-sur-lys';

let uploads;
let goodPhoto;
let mistypedPhoto;
before(() => {
  uploads = uploadDir();
  goodPhoto = uploads.file('nid-de-poule.png', pngBytes(16, 12));
  // Named like a JPEG, but it is text: Guichet checks the content, not the name.
  mistypedPhoto = uploads.file('photo.jpg', 'Ceci n’est pas une image.\n');
});
after(() => uploads?.remove());

/** The form step's error summary: its heading, and the links to the fields in error. */
async function errorSummary(page) {
  const summary = page.locator('.error-summary');
  assert.equal(await summary.count(), 1, `one error summary expected on ${page.url()}`);
  assert.equal(await summary.getAttribute('role'), 'alert');
  const links = await summary.getByRole('link').evaluateAll((as) =>
    as.map((a) => ({ href: a.getAttribute('href'), text: a.textContent.trim() })),
  );
  return { summary, links };
}

/** The opened page has exactly one non-empty h1 and returns its text. */
async function h1(page) {
  const heading = page.locator('h1');
  assert.equal(await heading.count(), 1, `exactly one h1 expected on ${page.url()}`);
  const text = (await heading.innerText()).trim();
  assert.notEqual(text, '', `empty h1 on ${page.url()}`);
  return text;
}

test('on a phone: sign up, verify the e-mail, report a problem with a photo, get the acknowledgement', { timeout: 300_000 }, async () => {
  const person = {
    given: 'Léa',
    family: 'Durand',
    email: 'lea.durand@exemple.test',
    password: 'une phrase de passe assez longue',
  };
  await guichet.withPage(PHONE, async (page) => {
    // The commune portal, then the service page, anonymously.
    let response = await page.goto(`${COMMUNE}/`);
    assert.equal(response.status(), 200);
    await checkPage(page, 'journey-commune-home');
    const serviceLink = page.getByRole('link', { name: 'Signaler un problème sur l\'espace public' });
    response = await navigation(page, () => serviceLink.click());
    assert.equal(response.status(), 200);
    assert.equal(new URL(page.url()).pathname, `${COMMUNE}/demarches/signalement`);
    assert.equal(await h1(page), 'Signaler un problème sur l\'espace public');
    assert.equal(await page.getByRole('link', { name: 'Commencer la démarche' }).count(), 0, 'no start link before login');
    await checkPage(page, 'journey-service-anonymous');

    // Sign-up, from the service page's link: a too-short password is refused first.
    response = await navigation(page, () => page.getByRole('link', { name: 'Créer un compte' }).click());
    assert.equal(response.status(), 200);
    assert.equal(new URL(page.url()).pathname, '/compte/inscription');
    assert.equal(await h1(page), 'Créer un compte');
    await checkPage(page, 'journey-signup');

    await page.getByLabel('Prénom').fill(person.given);
    await page.getByLabel('Nom', { exact: true }).fill(person.family);
    await page.getByLabel('Adresse électronique').fill(person.email);
    await page.getByLabel('Mot de passe', { exact: true }).fill('court');
    await page.getByLabel('Confirmation du mot de passe').fill('court');
    response = await navigation(page, () => page.getByRole('button', { name: 'Créer mon compte' }).click());
    assert.equal(response.status(), 422, 'a too-short password is refused with 422');
    const signupErrors = await errorSummary(page);
    assert.deepEqual(signupErrors.links.map((l) => l.href), ['#password']);
    assert.match(signupErrors.links[0].text, /12 caractères/);
    const password = page.getByLabel('Mot de passe', { exact: true });
    assert.equal(await password.getAttribute('aria-invalid'), 'true');
    assert.match(await password.getAttribute('aria-describedby'), /\bpassword-error\b/);
    assert.match(await page.locator('#password-error').innerText(), /12 caractères/);
    assert.equal(await page.getByLabel('Prénom').inputValue(), person.given, 'the other answers are kept');
    await checkPage(page, 'journey-signup-errors');

    await page.getByLabel('Mot de passe', { exact: true }).fill(person.password);
    await page.getByLabel('Confirmation du mot de passe').fill(person.password);
    await page.getByLabel(/Commune de résidence/).selectOption({ label: 'Saint-Aubin-sur-Lys' });
    response = await navigation(page, () => page.getByRole('button', { name: 'Créer mon compte' }).click());
    assert.equal(response.status(), 200);
    assert.equal(new URL(page.url()).pathname, '/compte/');
    assert.equal(await h1(page), 'Mon espace');
    assert.match(await page.locator('main').innerText(), /pas encore confirmée/);
    await checkPage(page, 'journey-my-space-unverified');

    // The verification e-mail, in the demo mailbox.
    response = await page.goto('/demo/courriels');
    assert.equal(response.status(), 200);
    const row = page.getByRole('row').filter({ hasText: person.email });
    assert.equal(await row.count(), 1, `one e-mail to ${person.email} expected`);
    await checkPage(page, 'journey-demo-emails');
    response = await navigation(page, () => row.getByRole('link').click());
    assert.equal(response.status(), 200);
    const text = await page.locator('pre.email-text').innerText();
    const origin = new URL(guichet.url).origin;
    const link = text.match(/https?:\/\/\S+\/compte\/verifier\/[A-Za-z0-9_-]+/)?.[0];
    assert.ok(link, `no verification link in the e-mail:\n${text}`);
    assert.equal(new URL(link).origin, origin, 'the link points to this server');
    await checkPage(page, 'journey-demo-email');

    response = await page.goto(link);
    assert.equal(response.status(), 200);
    assert.equal(await h1(page), 'Adresse électronique confirmée');
    await checkPage(page, 'journey-email-verified');

    // The service, from the commune portal, now logged in.
    await page.goto(`${COMMUNE}/`);
    await navigation(page, () => serviceLink.click());
    const start = page.getByRole('link', { name: 'Commencer la démarche' });
    assert.equal(await start.count(), 1);
    await checkPage(page, 'journey-service');
    // The form opens with a GET (no draft yet). A report has no summary page: its one page
    // sends the request, and says where the acknowledgement goes.
    response = await navigation(page, () => start.click());
    assert.equal(response.status(), 200);
    assert.equal(new URL(page.url()).pathname, `${COMMUNE}/demarches/signalement/formulaire`);
    assert.equal(await h1(page), 'Le problème');
    assert.match(await page.locator('.step-count').innerText(), /Étape 1 sur 1/);
    assert.equal(await page.getByRole('button', { name: 'Continuer' }).count(), 0, 'no summary step');
    assert.ok((await page.locator('#send-notice').innerText()).includes(person.email), 'the acknowledgement address is told');
    await checkPage(page, 'journey-step');

    // Everything but the description: refused, the error state is accessible.
    const sendButton = page.getByRole('button', { name: 'Envoyer ma demande' });
    await page.getByRole('radio', { name: 'Voirie et trottoirs' }).check();
    await page.getByLabel('Numéro et voie').fill('3 rue de la Lys');
    await page.getByLabel('Code postal').fill('45130');
    await page.getByLabel('Commune', { exact: true }).fill('Saint-Aubin-sur-Lys');
    response = await navigation(page, () => sendButton.click());
    assert.equal(response.status(), 422, 'an empty required description is refused with 422');
    let errors = await errorSummary(page);
    assert.deepEqual(errors.links.map((l) => l.href), ['#description']);
    assert.match(await page.title(), /^Erreur – /, 'the title says the step was refused');
    assert.match(errors.links[0].text, /Description/);
    const description = page.getByLabel(/^Description/);
    assert.equal(await description.getAttribute('aria-invalid'), 'true');
    assert.match(await description.getAttribute('aria-describedby'), /\bdescription-error\b/);
    assert.match(await page.locator('#description-error').innerText(), /obligatoire/);
    assert.ok(await page.getByRole('radio', { name: 'Voirie et trottoirs' }).isChecked(), 'the category is kept');
    assert.equal(await page.getByLabel('Numéro et voie').inputValue(), '3 rue de la Lys', 'the address is kept');
    await checkPage(page, 'journey-step-error');

    // A text file named photo.jpg: refused by its content.
    await description.fill('Nid-de-poule profond devant la boulangerie, dangereux pour les vélos.');
    await page.getByLabel('Photo').setInputFiles(mistypedPhoto);
    response = await navigation(page, () => sendButton.click());
    assert.equal(response.status(), 422, 'a file that is not an image is refused with 422');
    errors = await errorSummary(page);
    assert.deepEqual(errors.links.map((l) => l.href), ['#photo']);
    assert.match(errors.links[0].text, /photo\.jpg/);
    assert.match(errors.links[0].text, /JPEG ou PNG/);
    const photo = page.getByLabel('Photo');
    assert.equal(await photo.getAttribute('aria-invalid'), 'true');
    assert.match(await photo.getAttribute('aria-describedby'), /\bphoto-error\b/);
    assert.match(await page.getByLabel(/^Description/).inputValue(), /Nid-de-poule/, 'the description is kept');
    await checkPage(page, 'journey-step-refused-file');

    // A real PNG: accepted, and the request is sent at once: the request page, with its
    // reference, timeline, documents and message form.
    await page.getByLabel('Photo').setInputFiles(goodPhoto);
    response = await navigation(page, () => sendButton.click());
    assert.equal(response.status(), 200);
    const sent = new URL(page.url());
    assert.match(sent.pathname, /^\/compte\/demandes\/[^/]+$/);
    assert.equal(sent.searchParams.get('envoye'), '1');
    const reference = (await page.locator('dd.reference').innerText()).trim();
    assert.match(reference, /^SIG-\d{4}-\d{6}$/);
    assert.match(await page.getByRole('status').first().innerText(), new RegExp(reference));
    assert.ok((await page.locator('ol.timeline > li').count()) >= 1, 'the timeline has entries');
    assert.equal(await page.getByLabel('Votre message au service').count(), 1, 'a message field (#message)');
    assert.equal(await page.locator('#pieces[type=file]').count(), 1, 'an attachment field (#pieces)');
    assert.equal(await page.getByRole('link', { name: 'nid-de-poule.png' }).count(), 1, 'the photo is attached');
    await checkPage(page, 'journey-request');

    // The acknowledgement document.
    const document = page.locator('ul.documents a').first();
    assert.match(await document.innerText(), /Accusé de réception/);
    response = await navigation(page, () => document.click());
    assert.equal(response.status(), 200);
    const ack = await page.locator('main').innerText();
    assert.match(ack, /Accusé de réception électronique/);
    assert.match(ack, /Date de réception/);
    assert.match(ack, new RegExp(reference));
    await checkPage(page, 'journey-document');

    // My space lists the request.
    response = await page.goto('/compte/');
    assert.equal(response.status(), 200);
    const requestRow = page.getByRole('row').filter({ hasText: reference });
    assert.equal(await requestRow.count(), 1, `my space lists ${reference}`);
    assert.match(await requestRow.innerText(), /Signaler un problème/);
    await checkPage(page, 'journey-my-space');
  });
});

test('on a desktop: the demo citizen logs in and asks the mairie a question', { timeout: 300_000 }, async () => {
  await guichet.withPage(DESKTOP, async (page) => {
    await page.goto(`${COMMUNE}/`);
    await checkPage(page, 'journey-commune-home');
    await navigation(page, () => page.getByRole('link', { name: 'Poser une question à la mairie' }).click());
    assert.equal(new URL(page.url()).pathname, `${COMMUNE}/demarches/question-mairie`);
    await checkPage(page, 'journey-service-anonymous');

    let response = await navigation(page, () => page.getByRole('link', { name: 'Se connecter pour commencer' }).click());
    assert.equal(response.status(), 200);
    assert.equal(new URL(page.url()).pathname, '/compte/connexion');
    assert.equal(await h1(page), 'Se connecter');
    await checkPage(page, 'journey-login');

    response = await fillLogin(page, DEMO_CITIZEN);
    assert.equal(response.status(), 200);
    assert.equal(new URL(page.url()).pathname, `${COMMUNE}/demarches/question-mairie`, 'back to the service after login');
    const start = page.getByRole('link', { name: 'Commencer la démarche' });
    await checkPage(page, 'journey-service');

    response = await navigation(page, () => start.click());
    assert.equal(response.status(), 200);
    assert.equal(await h1(page), 'Votre question');
    await checkPage(page, 'journey-step');

    const continueButton = page.getByRole('button', { name: 'Continuer' });
    response = await navigation(page, () => continueButton.click());
    assert.equal(response.status(), 422, 'an empty step is refused with 422');
    const { links } = await errorSummary(page);
    assert.deepEqual(links.map((l) => l.href), ['#sujet', '#question', '#rappel']);
    assert.equal(await page.getByLabel(/^Sujet/).getAttribute('aria-invalid'), 'true');
    await checkPage(page, 'journey-step-error');

    await page.getByLabel(/^Sujet/).fill('Horaires de la mairie en août');
    await page.getByLabel(/^Votre question/).fill('La mairie est-elle ouverte le samedi matin pendant les congés d\'été ?');
    await page.getByRole('group', { name: /rappelé par téléphone/ }).getByRole('radio', { name: 'Non' }).check();
    response = await navigation(page, () => continueButton.click());
    assert.equal(response.status(), 200);
    assert.match(new URL(page.url()).pathname, /\/recapitulatif$/);
    const summary = await page.locator('.summary').innerText();
    assert.match(summary, /Horaires de la mairie en août/);
    assert.match(summary, /Non/);
    await checkPage(page, 'journey-summary');

    response = await navigation(page, () => page.getByRole('button', { name: 'Envoyer ma demande' }).click());
    assert.equal(response.status(), 200);
    const reference = (await page.locator('dd.reference').innerText()).trim();
    assert.match(reference, /^QM-\d{4}-\d{6}$/);
    assert.match(reference, REFERENCE);
    await checkPage(page, 'journey-request');

    response = await navigation(page, () => page.locator('ul.documents a').first().click());
    assert.equal(response.status(), 200);
    const ack = await page.locator('main').innerText();
    assert.match(ack, /Accusé de réception électronique/);
    assert.match(ack, /Date de réception/);
    await checkPage(page, 'journey-document');

    await page.goto('/compte/');
    assert.equal(await page.getByRole('row').filter({ hasText: reference }).count(), 1);
    await checkPage(page, 'journey-my-space');

    // The acknowledgement went out by e-mail too.
    await page.goto('/demo/courriels');
    assert.ok(
      (await page.getByRole('row').filter({ hasText: DEMO_CITIZEN.email }).filter({ hasText: reference }).count()) >= 1,
      `an e-mail to ${DEMO_CITIZEN.email} mentions ${reference}`,
    );
    await checkPage(page, 'journey-demo-emails');
  });
});
