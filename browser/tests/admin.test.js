// Tenant administration and the agent's profile, checked with axe-core at both widths,
// including their error states. The administrator enrols TOTP first, as every administrator must.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEMO_AGENTS, fillAgentLogin, totpCode } from '../lib/agents.js';
import { navigation } from '../lib/citizen.js';
import { checkPage, useGuichet, VIEWPORTS } from '../lib/harness.js';

const guichet = useGuichet();

test('administration and profile pages pass axe at both widths, error states included', { timeout: 300_000 }, async () => {
  const page = await guichet.newPage(VIEWPORTS[0]);
  try {
    await page.goto('/agents/connexion');
    await fillAgentLogin(page, DEMO_AGENTS.admin);
    assert.equal(new URL(page.url()).pathname, '/agents/totp');
    const secret = await page.locator('input[type=hidden][name=secret]').inputValue();
    await page.getByLabel('Code à 6 chiffres').fill(totpCode(secret));
    await navigation(page, () => page.getByRole('button', { name: 'Activer' }).click());
    assert.equal(new URL(page.url()).pathname, '/agents/');

    for (const viewport of VIEWPORTS) {
      await page.setViewportSize(viewport);
      let response = await page.goto('/agents/admin/');
      assert.equal(response.status(), 200);
      assert.equal(await page.locator('h1').innerText(), 'Administration');
      await checkPage(page, `admin-${viewport.width}`);
      response = await page.goto('/agents/profil');
      assert.equal(response.status(), 200);
      await checkPage(page, `agent-profile-${viewport.width}`);
    }

    // Error states: a wrong current password, an invalid address for a new agent.
    await page.goto('/agents/profil');
    await page.getByLabel('Mot de passe actuel').fill('pas le bon');
    await page.getByLabel('Nouveau mot de passe (12 caractères au moins)').fill('un nouveau mot de passe');
    await page.getByLabel('Confirmation').fill('un nouveau mot de passe');
    let response = await navigation(page, () => page.getByRole('button', { name: 'Changer le mot de passe' }).click());
    assert.equal(response.status(), 422);
    await checkPage(page, 'agent-profile-error');

    await page.goto('/agents/admin/');
    const form = page.locator('form.add-agent').first();
    await form.getByLabel('Adresse électronique').fill('agent@localhost');
    response = await navigation(page, () => form.getByRole('button', { name: 'Ajouter' }).click());
    assert.equal(response.status(), 422);
    assert.match(await page.locator('.error-summary').innerText(), /Adresse électronique/);
    await checkPage(page, 'admin-error');
  } finally {
    await page.context().close();
  }
});
