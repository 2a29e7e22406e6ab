// "A decision maker opens the dashboard": the dashboards in headless Chromium, with axe-core
// (WCAG 2.1 A/AA) on every page reached, error states included, at desktop (1280 px) and phone
// (375 px) widths, and the reflow check (the page never scrolls sideways at 375 px; a wide table
// scrolls inside its .table-wrap, which is then a named, focusable region).
//  - The EPCI agent (password only; member of the EPCI and of three of its 32 communes) opens
//    /agents/tableau-de-bord: the consolidated view, its key figures, charts (svg role=img named
//    by their <title> and <desc>) each followed by its data table, the "Demandes par commune"
//    table of the 32 communes, and the CSV/ODS/XLSX exports of every table; then filters one
//    commune and one channel, is refused a period that ends before it starts (422), and follows
//    a commune's link to the inbox. Inbox links appear only where the agent may see every
//    request counted: in the rows of the communes they are member of, and not on the
//    consolidated totals.
//  - The commune agent opens their commune's dashboard (no breakdown by commune) and follows the
//    "Demandes reçues" figure to the inbox, which lists as many requests.
//  - The public service-level page of a commune, from its home page, without logging in.
//  - The dashboard printed: filters, breadcrumb and export links left out, the tables kept whole.
// No page has any script: the clicks below submit plain GET forms and follow plain links.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEMO_AGENTS, fillAgentLogin } from '../lib/agents.js';
import { assertFocusVisible, focused, navigation } from '../lib/citizen.js';
import { checkPage, useGuichet, VIEWPORTS } from '../lib/harness.js';

const guichet = useGuichet();
const DASHBOARD = '/agents/tableau-de-bord';
const EPCI_NAME = 'Communauté de communes du Val de Lys';
const COMMUNE_NAME = 'Saint-Aubin-sur-Lys';
const COMMUNE_SLUG = 'saint-aubin-sur-lys';
/** `guichet demo` makes an EPCI of 32 communes. */
const DEMO_COMMUNES = 32;
const CHANNELS = ['En ligne', 'Courriel', 'SMS', 'Courrier', 'Accueil', 'Téléphone'];
const EXPORTS = Object.freeze({
  CSV: { ext: 'csv', type: 'text/csv; charset=utf-8' },
  ODS: { ext: 'ods', type: 'application/vnd.oasis.opendocument.spreadsheet' },
  XLSX: { ext: 'xlsx', type: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet' },
});

const pathname = (page) => new URL(page.url()).pathname;
const params = (page) => new URL(page.url()).searchParams;

/** A count as the dashboard prints it ("1 234", narrow no-break spaces): its leading integer. */
function count(text) {
  const m = /^\d+/.exec(String(text).replace(/[\s\u00a0\u202f]/g, ''));
  assert.ok(m, `not a count: ${JSON.stringify(text)}`);
  return Number(m[0]);
}

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

/** Opens /agents/connexion (checked), logs the agent in, and returns on the inbox (checked). */
async function login(page, agent, name) {
  let response = await page.goto('/agents/connexion');
  assert.equal(response.status(), 200);
  await check(page, `${name}-login`);
  response = await fillAgentLogin(page, agent);
  assert.equal(response.status(), 200);
  assert.equal(pathname(page), '/agents/', `${agent.email} needs no second factor`);
  await check(page, `${name}-inbox`);
}

/**
 * From the inbox to the dashboard by the inbox's "Tableau de bord" link. Returns the response.
 */
async function openDashboard(t, page) {
  const link = page.locator(`a[href="${DASHBOARD}"]`);
  assert.ok((await link.count()) > 0, 'the inbox links to the dashboard');
  assert.equal((await link.first().innerText()).trim(), 'Tableau de bord');
  const response = await navigation(page, () => link.first().click());
  assert.equal(response.status(), 200);
  assert.equal(pathname(page), DASHBOARD);
  return response;
}

/** The key figures: [{ label, value (as shown), count (a number, or null), href, previous }]. */
async function keyFigures(page) {
  const kpis = await page.locator('.kpis .kpi').evaluateAll((items) =>
    items.map((li) => {
      const value = li.querySelector('.kpi-value');
      const link = value?.querySelector('a');
      // The link's visible text, without its screen-reader suffix (" : voir les demandes").
      const shown = link ? [...link.childNodes].filter((n) => n.nodeType === Node.TEXT_NODE).map((n) => n.textContent).join('') : value?.textContent;
      return {
        label: li.querySelector('.kpi-label')?.textContent.trim() ?? '',
        value: (shown ?? '').trim(),
        previous: li.querySelector('.kpi-previous')?.textContent.trim() ?? '',
        href: link?.getAttribute('href') ?? null,
        linkName: link?.textContent.trim() ?? null,
      };
    }),
  );
  assert.ok(kpis.length >= 1, 'the dashboard shows key figures');
  for (const k of kpis) {
    assert.notEqual(k.label, '', 'every key figure has a .kpi-label');
    assert.notEqual(k.value, '', `"${k.label}" has a .kpi-value`);
    assert.match(k.previous, /^Période précédente : /, `"${k.label}" has its .kpi-previous`);
    if (k.href) assert.match(k.linkName, /voir les demandes$/, `the link of "${k.label}" says where it leads`);
  }
  return kpis;
}

/** The key figure of that label. */
function kpi(kpis, label) {
  const k = kpis.find((x) => x.label === label);
  assert.ok(k, `no key figure "${label}" among ${kpis.map((x) => x.label).join(' | ')}`);
  return k;
}

/** The rows of a dashboard table (section id `key`): [{ name, href, cells }]. */
function tableRows(page, key) {
  return page.locator(`section#${key} table.data tbody tr`).evaluateAll((rows) =>
    rows.map((tr) => {
      const head = tr.querySelector('th');
      return {
        name: head?.textContent.trim() ?? '',
        href: head?.querySelector('a')?.getAttribute('href') ?? null,
        cells: [...tr.querySelectorAll('td')].map((td) => td.textContent.trim()),
      };
    }),
  );
}

const sumColumn = (rows, col = 0) => rows.reduce((n, r) => n + count(r.cells[col]), 0);

/**
 * The structure every dashboard shares, checked in the page: the "Chiffres clés" list; each
 * section named by its h2; each chart an svg role=img named by its own <title> and <desc>, and
 * followed by the section's data table; each table with a caption, column headers (scope=col)
 * and row headers (scope=row), as many cells as columns; CSV/ODS/XLSX links of that table.
 * Returns the sections' ids.
 */
async function assertDashboardStructure(page) {
  const kpiSection = page.getByRole('region', { name: 'Chiffres clés', exact: true });
  assert.equal(await kpiSection.count(), 1, 'a "Chiffres clés" section');
  assert.equal(await kpiSection.locator('ul.kpis > li.kpi').count(), await page.locator('.kpi').count(), 'the key figures are a list');

  const report = await page.evaluate(() => {
    const problems = [];
    const text = (el) => (el?.textContent ?? '').trim();
    const sections = [...document.querySelectorAll('section.dashboard-table')];
    let charts = 0;
    for (const s of sections) {
      const where = `section#${s.id}`;
      const heading = document.getElementById(s.getAttribute('aria-labelledby') ?? '');
      if (!heading || heading.tagName !== 'H2' || !text(heading)) problems.push(`${where} is not named by its h2`);
      const tables = s.querySelectorAll('table.data');
      if (tables.length !== 1) {
        problems.push(`${where} has ${tables.length} data tables`);
        continue;
      }
      const table = tables[0];
      for (const svg of s.querySelectorAll('svg')) {
        charts += 1;
        if (!svg.classList.contains('chart')) problems.push(`${where}: an svg without class chart`);
        if (svg.getAttribute('role') !== 'img') problems.push(`${where}: the chart is not role=img`);
        const ids = (svg.getAttribute('aria-labelledby') ?? '').split(/\s+/).filter(Boolean);
        const named = ids.map((id) => document.getElementById(id));
        const title = named.find((el) => el?.tagName.toLowerCase() === 'title');
        const desc = named.find((el) => el?.tagName.toLowerCase() === 'desc');
        if (!title || title.parentNode !== svg || !text(title)) problems.push(`${where}: the chart's aria-labelledby does not name its own <title>`);
        if (!desc || desc.parentNode !== svg || !text(desc)) problems.push(`${where}: the chart's aria-labelledby does not name its own <desc>`);
        if (named.some((el) => !el)) problems.push(`${where}: aria-labelledby="${ids.join(' ')}" names a missing element`);
        if (!(svg.compareDocumentPosition(table) & Node.DOCUMENT_POSITION_FOLLOWING)) problems.push(`${where}: the data table does not follow the chart`);
      }
      if (!text(table.querySelector('caption'))) problems.push(`${where}: the table has no caption`);
      const cols = [...table.querySelectorAll('thead th')];
      if (cols.length < 2) problems.push(`${where}: fewer than two column headers`);
      if (cols.some((th) => th.getAttribute('scope') !== 'col' || !text(th))) problems.push(`${where}: a column header without scope=col or text`);
      table.querySelectorAll('tbody tr').forEach((tr, i) => {
        const cells = [...tr.children];
        const [first, ...rest] = cells;
        if (first?.tagName !== 'TH' || first.getAttribute('scope') !== 'row') problems.push(`${where}: row ${i + 1} does not start with a th scope=row`);
        if (rest.some((c) => c.tagName !== 'TD')) problems.push(`${where}: row ${i + 1} has a th after its first cell`);
        if (cells.length !== cols.length) problems.push(`${where}: row ${i + 1} has ${cells.length} cells for ${cols.length} columns`);
      });
      if (!table.parentElement.classList.contains('table-wrap')) problems.push(`${where}: the table is not in a .table-wrap`);
      const links = [...s.querySelectorAll('p.exports a')];
      const formats = links.map((a) => text(a));
      if (formats.join(' ') !== 'CSV ODS XLSX') problems.push(`${where}: export links ${JSON.stringify(formats)}`);
      for (const a of links) {
        const u = new URL(a.href);
        if (u.searchParams.get('table') !== s.id) problems.push(`${where}: ${text(a)} exports table=${u.searchParams.get('table')}`);
        if (u.pathname !== `/agents/tableau-de-bord/export.${text(a).toLowerCase()}`) problems.push(`${where}: ${text(a)} points to ${u.pathname}`);
      }
    }
    return { problems, ids: sections.map((s) => s.id), charts };
  });
  assert.deepEqual(report.problems, [], `dashboard structure on ${page.url()}`);
  assert.ok(report.ids.length >= 4, `at least four tables, found ${report.ids.join(', ')}`);
  assert.ok(report.charts >= 3, `at least three charts, found ${report.charts}`);
  for (const key of ['periode', 'demarches', 'canaux']) assert.ok(report.ids.includes(key), `a "${key}" table`);
  await assertTableRegions(page);
  return report.ids;
}

/**
 * NEEDS THE REBUILT BINARY (templates/agents/dashboard.html, templates/service_levels.html):
 * every .table-wrap (which scrolls sideways on a phone) is a named region in the tab order, so
 * that the keyboard can scroll it (WCAG 2.1.1; axe's scrollable-region-focusable).
 */
async function assertTableRegions(page) {
  const wraps = await page.locator('.table-wrap').evaluateAll((els) =>
    els.map((el) => ({ role: el.getAttribute('role'), tabindex: el.getAttribute('tabindex'), label: el.getAttribute('aria-label'), labelledby: el.getAttribute('aria-labelledby') })),
  );
  assert.ok(wraps.length >= 1, `a .table-wrap on ${page.url()}`);
  for (const [i, w] of wraps.entries()) {
    assert.equal(w.role, 'region', `.table-wrap #${i + 1} on ${page.url()} is a region (needs the rebuilt binary)`);
    assert.equal(w.tabindex, '0', `.table-wrap #${i + 1} on ${page.url()} is focusable (needs the rebuilt binary)`);
    assert.ok(w.label || w.labelledby, `.table-wrap #${i + 1} on ${page.url()} is named (needs the rebuilt binary)`);
  }
  const names = await page.locator('.table-wrap').evaluateAll((els) =>
    els.map((el) => el.getAttribute('aria-label') ?? document.getElementById(el.getAttribute('aria-labelledby') ?? '')?.textContent.trim() ?? ''),
  );
  assert.ok(names.every((n) => n !== ''), `every table region has a non-empty name: ${JSON.stringify(names)}`);
}

/**
 * NEEDS THE REBUILT BINARY: at 375 px a table that scrolls sideways is reached with Tab, with a
 * visible focus. `before` is the last focusable element before it.
 */
async function assertScrollingTableTabbable(page, key, before) {
  const wrap = page.locator(`section#${key} .table-wrap`);
  const scrolls = await wrap.evaluate((el) => el.scrollWidth > el.clientWidth);
  if (!scrolls) return false;
  await before.focus();
  await page.keyboard.press('Tab');
  const f = await focused(page);
  assert.equal(f.tag, 'div', `Tab after the element before #${key} reaches its scrolling table (needs the rebuilt binary), not <${f.tag}> "${f.text}"`);
  assert.ok(await wrap.evaluate((el) => el === document.activeElement), `the focus is on #${key} .table-wrap`);
  assertFocusVisible(f, `on #${key} .table-wrap`);
  await page.keyboard.press('ArrowRight');
  await page.waitForFunction((k) => document.querySelector(`section#${k} .table-wrap`).scrollLeft > 0, key, { timeout: 5_000 });
  return true;
}

/** Fetches every export link of the page with the page's cookies; checks status, type, file. */
async function assertExports(page) {
  const links = await page.locator('p.exports a').evaluateAll((as) => as.map((a) => ({ format: a.textContent.trim(), href: a.getAttribute('href') })));
  assert.ok(links.length >= 12, `export links on ${page.url()}`);
  for (const { format, href } of links) {
    const expected = EXPORTS[format];
    assert.ok(expected, `unknown export format "${format}"`);
    const key = new URL(href, page.url()).searchParams.get('table');
    const response = await page.request.get(href);
    assert.equal(response.status(), 200, `${format} export of "${key}": HTTP ${response.status()}`);
    assert.equal(response.headers()['content-type'], expected.type, `${format} export of "${key}"`);
    assert.match(response.headers()['content-disposition'] ?? '', new RegExp(`^attachment; filename="${key}-[^"]+\\.${expected.ext}"$`), `${format} export of "${key}" is a named download`);
    const body = await response.body();
    if (expected.ext === 'csv') {
      // UTF-8 with a byte order mark, ';'-separated, the table's header and as many rows.
      const lines = body.toString('utf8').replace(/^\ufeff/, '').split('\r\n').filter((l) => l !== '');
      const header = (await page.locator(`section#${key} table.data thead th`).allInnerTexts()).map((s) => s.trim());
      assert.equal(lines[0], header.join(';'), `the CSV of "${key}" starts with the table's header`);
      assert.equal(lines.length - 1, await page.locator(`section#${key} table.data tbody tr`).count(), `the CSV of "${key}" has the table's rows`);
    } else {
      assert.equal(body.subarray(0, 2).toString('latin1'), 'PK', `the ${format} export of "${key}" is a zip package`);
      if (expected.ext === 'ods') {
        assert.equal(body.subarray(30, 38).toString('latin1'), 'mimetype', 'an ODS package starts with its mimetype entry');
        assert.ok(body.subarray(0, 200).toString('latin1').includes(expected.type), 'stored uncompressed, first');
      }
    }
  }
  return links.length;
}

for (const viewport of VIEWPORTS) {
  test(`at ${viewport.width}px: the EPCI agent opens the consolidated dashboard, filters it, is refused a reversed period and follows a commune to the inbox`, { timeout: 300_000 }, async (t) => {
    const w = viewport.width;
    await guichet.withPage(viewport, async (page) => {
      await login(page, DEMO_AGENTS.epci, 'dashboard-epci');
      await openDashboard(t, page);

      // The consolidated view.
      assert.equal(await h1(page), `Tableau de bord – ${EPCI_NAME}`);
      assert.match(await page.title(), new RegExp(`^Tableau de bord – ${EPCI_NAME}`));
      assert.match(await page.locator('p.lead').innerText(), /^Vue consolidée de l'intercommunalité et de ses communes membres, du .+ au .+, comparée à la période précédente/);
      const breadcrumb = page.getByRole('navigation', { name: "Fil d'Ariane" });
      assert.equal(await breadcrumb.getByRole('link', { name: 'Demandes', exact: true }).getAttribute('href'), '/agents/');
      const ids = await assertDashboardStructure(page);
      assert.ok(ids.includes('communes'), 'the consolidated view has the "communes" table');
      const kpis = await keyFigures(page);
      const received = kpi(kpis, 'Demandes reçues');
      const total = count(received.value);

      // The filters: a GET form, every field labelled; the EPCI chosen, its communes offered.
      const form = page.getByRole('form', { name: 'Filtres du tableau de bord' });
      assert.equal(await form.count(), 1, 'a form named "Filtres du tableau de bord"');
      assert.equal(await form.getAttribute('method'), 'get');
      assert.equal(await form.getAttribute('action'), DASHBOARD);
      for (const label of ['Collectivité', 'Du', 'Au', 'Démarche', 'Canal', 'Commune']) {
        assert.equal(await form.getByLabel(label, { exact: true }).count(), 1, `a "${label}" field`);
      }
      assert.equal(await form.getByRole('button', { name: 'Afficher', exact: true }).count(), 1);
      const collectivite = form.getByLabel('Collectivité', { exact: true });
      assert.equal((await collectivite.locator('option:checked').innerText()).trim(), EPCI_NAME);
      const epciId = await collectivite.inputValue();
      // The "Collectivité" choices are the agent's memberships: the EPCI and three communes.
      const memberOf = (await collectivite.locator('option').allInnerTexts()).map((s) => s.trim()).filter((n) => n !== EPCI_NAME);
      assert.equal(memberOf.length, 3, `the EPCI agent is member of three communes: ${memberOf.join(', ')}`);
      assert.ok(memberOf.includes(COMMUNE_NAME));
      assert.match(await form.getByLabel('Du', { exact: true }).inputValue(), /^\d{4}-\d{2}-\d{2}$/);
      const au = await form.getByLabel('Au', { exact: true }).inputValue();
      assert.match(au, /^\d{4}-\d{2}-\d{2}$/);

      // "Demandes par commune": the 32 demo communes, the same as the "Commune" filter offers.
      const communes = await tableRows(page, 'communes');
      assert.equal(communes.length, DEMO_COMMUNES, `the ${DEMO_COMMUNES} demo communes`);
      const offered = (await form.getByLabel('Commune', { exact: true }).locator('option').allInnerTexts()).map((s) => s.trim());
      assert.deepEqual(communes.map((r) => r.name), offered.filter((o) => o !== 'Toutes'));
      assert.deepEqual(await page.locator('section#communes table.data thead th').allInnerTexts(), ['Commune', 'Demandes', 'Période précédente', 'Évolution']);
      assert.ok(sumColumn(communes) <= total, 'the communes count no more than the total');

      // Inbox links only where the agent may see every request counted: in the rows of the
      // communes they are member of, never on totals that include the other communes.
      const linked = communes.filter((r) => r.href).map((r) => r.name);
      assert.deepEqual([...linked].sort(), [...memberOf].sort(), 'the communes the agent is member of, and only those, link to the inbox');
      for (const r of communes.filter((x) => x.href)) {
        const u = new URL(r.href, page.url());
        assert.equal(u.pathname, '/agents/', `${r.name} links to the inbox`);
        assert.ok(u.searchParams.get('commune'), `${r.name}'s link chooses the citizens' commune`);
      }
      assert.equal(
        received.href !== null,
        linked.length === communes.length,
        `"Demandes reçues" links to the inbox only if every commune row does (href ${received.href})`,
      );
      assert.equal(received.href, null, 'the EPCI agent, member of 3 communes of 32, has no inbox link on the consolidated total');
      const canaux = await tableRows(page, 'canaux');
      assert.deepEqual(canaux.map((r) => r.name), CHANNELS);
      assert.equal(sumColumn(canaux), total, 'the channels add up to "Demandes reçues"');
      assert.equal(sumColumn(await tableRows(page, 'periode')), total, 'the days add up to "Demandes reçues"');
      assert.ok(canaux.every((r) => r.href === null), 'no inbox link on the channels of all communes');
      const sa = communes.find((r) => r.name === COMMUNE_NAME);
      const web = canaux.find((r) => r.name === 'En ligne');
      t.diagnostic(`${w}px: ${total} requests received; ${COMMUNE_NAME} ${sa.cells[0]}, online ${web.cells[0]}`);
      if (w === 375) {
        // Wide tables scroll inside their region; the keyboard reaches one without a link.
        const scrolled = await assertScrollingTableTabbable(page, 'canaux', page.locator('section#categories p.exports a').last());
        t.diagnostic(`#canaux ${scrolled ? 'scrolls and was scrolled with the keyboard' : 'does not scroll'} at 375px`);
      }
      await check(page, 'dashboard-epci');

      // Exports of every table, with the agent's cookie (once: the links are the same at both widths).
      if (w === VIEWPORTS[0].width) {
        const n = await assertExports(page);
        t.diagnostic(`${n} exports fetched`);
      }

      // One commune, one channel.
      const communeSelect = form.getByLabel('Commune', { exact: true });
      await communeSelect.selectOption({ label: COMMUNE_NAME });
      const communeId = await communeSelect.inputValue();
      await form.getByLabel('Canal', { exact: true }).selectOption({ label: 'En ligne' });
      let response = await navigation(page, () => form.getByRole('button', { name: 'Afficher', exact: true }).click());
      assert.equal(response.status(), 200);
      assert.equal(pathname(page), DASHBOARD);
      assert.equal(params(page).get('commune'), communeId, 'the commune is in the address');
      assert.equal(params(page).get('canal'), 'web', 'the channel is in the address');
      assert.equal(params(page).get('collectivite'), epciId);
      assert.equal(await h1(page), `Tableau de bord – ${EPCI_NAME}`);
      assert.equal((await communeSelect.locator('option:checked').innerText()).trim(), COMMUNE_NAME, 'the commune stays chosen');
      assert.equal((await form.getByLabel('Canal', { exact: true }).locator('option:checked').innerText()).trim(), 'En ligne', 'the channel stays chosen');
      await assertDashboardStructure(page);
      const filtered = count(kpi(await keyFigures(page), 'Demandes reçues').value);
      assert.ok(filtered <= total, `one commune, one channel: ${filtered} ≤ ${total}`);
      assert.ok(filtered <= count(sa.cells[0]), `no more than ${COMMUNE_NAME} on all channels (${sa.cells[0]})`);
      assert.ok(filtered <= count(web.cells[0]), `no more than online for all communes (${web.cells[0]})`);
      const communesNow = await tableRows(page, 'communes');
      for (const r of communesNow) {
        assert.equal(count(r.cells[0]), r.name === COMMUNE_NAME ? filtered : 0, `${r.name} in the filtered view`);
      }
      for (const r of await tableRows(page, 'canaux')) {
        assert.equal(count(r.cells[0]), r.name === 'En ligne' ? filtered : 0, `channel ${r.name} in the filtered view`);
      }
      assert.equal(sumColumn(await tableRows(page, 'periode')), filtered, 'the days add up to the filtered figure');
      for (const href of await page.locator('p.exports a').evaluateAll((as) => as.map((a) => a.href))) {
        const q = new URL(href).searchParams;
        assert.equal(q.get('commune'), communeId, 'the exports keep the commune');
        assert.equal(q.get('canal'), 'web', 'the exports keep the channel');
      }
      t.diagnostic(`${w}px: ${COMMUNE_NAME} online: ${filtered} request(s)`);
      await check(page, 'dashboard-epci-filtered');

      // A period that ends before it starts: refused with 422, the default period shown.
      const later = new Date(`${au}T12:00:00Z`);
      const earlier = new Date(later.getTime() - 10 * 86_400_000);
      await form.getByLabel('Du', { exact: true }).fill(au);
      await form.getByLabel('Au', { exact: true }).fill(earlier.toISOString().slice(0, 10));
      response = await navigation(page, () => form.getByRole('button', { name: 'Afficher', exact: true }).click());
      assert.equal(response.status(), 422, '"Du" after "Au" is refused with 422');
      assert.equal(params(page).get('du'), au);
      const summary = await errorSummary(page);
      assert.match(summary, /« Du »/, `the error names the "Du" field: ${summary}`);
      assert.match(summary, /30 derniers jours/);
      assert.equal(await h1(page), `Tableau de bord – ${EPCI_NAME}`);
      const [du2, au2] = [await form.getByLabel('Du', { exact: true }).inputValue(), await form.getByLabel('Au', { exact: true }).inputValue()];
      assert.ok(du2 < au2, `the period shown instead is in order (${du2} – ${au2})`);
      assert.ok(await page.locator('.error-summary').evaluate((el) => el.compareDocumentPosition(document.querySelector('form.filters')) & Node.DOCUMENT_POSITION_FOLLOWING), 'the error comes before the form');
      await assertDashboardStructure(page);
      await check(page, 'dashboard-epci-error');

      // A commune the agent is member of, from the unfiltered view, to the inbox.
      response = await page.goto(DASHBOARD);
      assert.equal(response.status(), 200);
      const row = page.locator('section#communes table.data tbody tr').filter({ has: page.locator('th a', { hasText: COMMUNE_NAME }) });
      assert.equal(await row.count(), 1);
      const figure = count(await row.locator('td').first().innerText());
      response = await navigation(page, () => row.locator('th a').click());
      assert.equal(response.status(), 200);
      assert.equal(pathname(page), '/agents/');
      assert.equal(params(page).get('commune'), communeId, `the requests of ${COMMUNE_NAME}'s inhabitants`);
      assert.ok(params(page).get('du') && params(page).get('au'), 'over the dashboard\'s period');
      const listed = count((await h1(page)).replace(/^Demandes \(/, ''));
      // The figure counts the requests of the commune's inhabitants, handled by the commune or
      // by the EPCI; the inbox's commune filter lists the same ones.
      assert.equal(listed, figure, `${COMMUNE_NAME}'s figure and its inbox view agree`);
      await check(page, 'dashboard-epci-commune-inbox');
    });
  });
}

for (const viewport of VIEWPORTS) {
  test(`at ${viewport.width}px: the commune agent opens their commune's dashboard and follows "Demandes reçues" to the inbox`, { timeout: 240_000 }, async (t) => {
    const w = viewport.width;
    await guichet.withPage(viewport, async (page) => {
      await login(page, DEMO_AGENTS.commune, 'dashboard-commune');
      await openDashboard(t, page);
      assert.equal(await h1(page), `Tableau de bord – ${COMMUNE_NAME}`);
      assert.doesNotMatch(await page.locator('p.lead').innerText(), /consolidée/);
      const ids = await assertDashboardStructure(page);
      assert.equal(await page.locator('#communes').count(), 0, 'no breakdown by commune for a commune');
      assert.ok(!ids.includes('communes'));
      const form = page.getByRole('form', { name: 'Filtres du tableau de bord' });
      assert.equal(await form.getByLabel('Commune', { exact: true }).count(), 0, 'no "Commune" filter');
      assert.equal((await form.getByLabel('Collectivité', { exact: true }).locator('option:checked').innerText()).trim(), COMMUNE_NAME);

      // Every figure of one's own commune may be seen: the headline figures link to the inbox.
      const kpis = await keyFigures(page);
      const received = kpi(kpis, 'Demandes reçues');
      assert.ok(received.href, '"Demandes reçues" links to the inbox');
      const total = count(received.value);
      assert.equal(sumColumn(await tableRows(page, 'periode')), total, 'the days add up to "Demandes reçues"');
      assert.equal(sumColumn(await tableRows(page, 'canaux')), total, 'the channels add up to "Demandes reçues"');
      assert.ok((await tableRows(page, 'canaux')).every((r) => r.href), 'each channel links to its requests');
      if (w === 375) {
        const scrolled = await assertScrollingTableTabbable(page, 'categories', page.locator('section#demarches p.exports a').last());
        t.diagnostic(`#categories ${scrolled ? 'scrolls and was scrolled with the keyboard' : 'does not scroll'} at 375px`);
      }
      await check(page, 'dashboard-commune');

      const link = page.locator('.kpi').filter({ has: page.locator('.kpi-label', { hasText: /^Demandes reçues$/ }) }).locator('.kpi-value a');
      const response = await navigation(page, () => link.click());
      assert.equal(response.status(), 200);
      assert.equal(pathname(page), '/agents/');
      const q = params(page);
      assert.ok(q.get('collectivite'), 'the inbox of the commune');
      assert.ok(q.get('du') && q.get('au'), 'over the dashboard\'s period');
      const heading = await h1(page);
      assert.match(heading, /^Demandes \(\d+\)$/);
      assert.equal(count(heading.replace(/^Demandes \(/, '')), total, `the inbox lists the ${total} requests counted`);
      assert.equal(await page.locator('table.inbox tbody tr').count(), total);
      await check(page, 'dashboard-commune-inbox');
    });
  });
}

for (const viewport of VIEWPORTS) {
  test(`at ${viewport.width}px: the public service-level page of ${COMMUNE_NAME}, from its home page`, { timeout: 120_000 }, async () => {
    await guichet.withPage(viewport, async (page) => {
      let response = await page.goto(`/${COMMUNE_SLUG}/`);
      assert.equal(response.status(), 200);
      await check(page, 'service-levels-home');
      const homeTitle = await h1(page);
      const link = page.getByRole('link', { name: 'Nos délais de traitement', exact: true });
      assert.equal(await link.count(), 1, 'the home page links to the service levels');
      response = await navigation(page, () => link.click());
      assert.equal(response.status(), 200);
      assert.equal(pathname(page), `/${COMMUNE_SLUG}/delais-de-traitement`);
      assert.equal(await h1(page), `Délais de traitement – ${COMMUNE_NAME}`);
      const table = page.locator('main table.data');
      if ((await table.count()) > 0) {
        assert.equal(await table.count(), 1);
        assert.ok((await table.locator('caption').innerText()).trim(), 'the table has a caption');
        assert.deepEqual(
          (await table.locator('thead th').evaluateAll((ths) => ths.map((th) => th.getAttribute('scope')))).filter((s) => s !== 'col'),
          [],
          'column headers have scope=col',
        );
        const rows = table.locator('tbody tr');
        assert.ok((await rows.count()) >= 1);
        assert.equal(await table.locator('tbody tr > :first-child:not(th[scope="row"])').count(), 0, 'each row starts with its header');
        assert.match(await page.locator('main').innerText(), /ne sont publiés qu'à partir de \d+ demandes terminées/, 'the publication threshold is explained');
        await assertTableRegions(page);
      } else {
        assert.match(await page.locator('main').innerText(), /ne publie pas ses délais de traitement|Aucune démarche en ligne/, 'no table: an explanation');
      }
      await check(page, 'service-levels');
      // NEEDS THE REBUILT BINARY (templates/service_levels.html): the link back went to "../",
      // which from /<commune>/delais-de-traitement is the platform's home, not the commune's.
      response = await navigation(page, () => page.getByRole('link', { name: `Retour à l'accueil de ${COMMUNE_NAME}` }).click());
      assert.equal(response.status(), 200);
      assert.equal(pathname(page), `/${COMMUNE_SLUG}/`, `"Retour à l'accueil de ${COMMUNE_NAME}" leads to the commune's home (needs the rebuilt binary)`);
      assert.equal(await h1(page), homeTitle, 'back on the commune\'s home page');
    });
  });
}

for (const viewport of VIEWPORTS) {
  test(`at ${viewport.width}px: the dashboard printed keeps its figures and tables, without filters or navigation`, { timeout: 120_000 }, async () => {
    await guichet.withPage(viewport, async (page) => {
      await page.goto('/agents/connexion');
      const response = await fillAgentLogin(page, DEMO_AGENTS.epci);
      assert.equal(response.status(), 200);
      assert.equal((await page.goto(DASHBOARD)).status(), 200);
      await page.emulateMedia({ media: 'print' });
      const display = (selector) => page.locator(selector).evaluateAll((els) => els.map((el) => getComputedStyle(el).display));
      assert.deepEqual(await display('form.filters'), ['none'], 'the filters are not printed');
      assert.deepEqual(await display('nav.breadcrumb'), ['none'], 'the breadcrumb is not printed');
      assert.ok((await display('p.exports')).every((d) => d === 'none'), 'the export links are not printed');
      assert.ok((await display('.site-header')).every((d) => d === 'none'), 'the site header is not printed');
      assert.ok(await page.locator('h1').isVisible(), 'the title is printed');
      assert.ok(await page.locator('ul.kpis').isVisible(), 'the key figures are printed');
      const tables = page.locator('table.data');
      assert.ok((await tables.count()) >= 4);
      for (let i = 0; i < (await tables.count()); i++) {
        assert.ok(await tables.nth(i).isVisible(), `table ${i + 1} is printed`);
      }
      assert.ok((await display('table.data')).every((d) => d === 'table'));
      assert.ok((await display('svg.chart')).every((d) => d === 'block'), 'the charts are printed');
      // NEEDS THE REBUILT BINARY (guichet.css): paper does not scroll, so no table is clipped.
      assert.deepEqual(
        [...new Set(await page.locator('.table-wrap').evaluateAll((els) => els.map((el) => getComputedStyle(el).overflowX)))],
        ['visible'],
        'printed tables are not clipped by their scrolling wrapper (needs the rebuilt binary)',
      );
      await checkPage(page, 'dashboard-print');
      await page.emulateMedia({ media: 'screen' });
      assert.notEqual((await display('form.filters'))[0], 'none', 'the filters are back on screen');
    });
  });
}
