// Credits: a person's statement (by role and kind, held and released,
// clawbacks, disputes) and the CS-sourced vs Sales-closed view of each team
// and of the organisation. Calls: ListPeople, GetStatement, ListDisputes,
// ListOpportunities (deal names). A csm or ae key reads only its own
// statement (and its managed team's): any other is PERMISSION_DENIED, shown
// as the API says it — the page never hides or works around a refusal.

import { CREDIT, PIPELINE, call, listAll, names } from './api.js';
import { COLORS, groupedBarChart, legend } from './charts.js';
import {
  accountLink, addDays, day, figures, filterForm, h, label, money, named, num, section, table, today,
} from './ui.js';

/** This quarter, [first day, first day of the next), UTC. */
function thisQuarter() {
  const [y, m] = today().split('-').map(Number);
  const first = Math.floor((m - 1) / 3) * 3 + 1;
  const start = `${y}-${String(first).padStart(2, '0')}-01`;
  const next = first + 3 > 12 ? `${y + 1}-01-01` : `${y}-${String(first + 3).padStart(2, '0')}-01`;
  return [start, next];
}

/** Every page of a statement: the figures of the first, the entries of all. */
async function statement(request) {
  const first = await call(CREDIT, 'GetStatement', { ...request, pageSize: 1000 });
  const entries = [...(first.entries || [])];
  let pageToken = first.nextPageToken || '';
  while (pageToken) {
    const page = await call(CREDIT, 'GetStatement', { ...request, pageSize: 1000, pageToken });
    entries.push(...(page.entries || []));
    pageToken = page.nextPageToken || '';
  }
  return { ...first, entries };
}

function currencyFigures(c, prefix) {
  return [
    h('h3', {}, c.currencyCode),
    figures([
      ['Opening', money(c.openingBalance)],
      ['Closing', money(c.closingBalance), `${prefix}closing-${c.currencyCode}`],
      ['Held', money(c.held), `${prefix}held-${c.currencyCode}`],
      ['Released', money(c.released), `${prefix}released-${c.currencyCode}`],
      ['CS-sourced', money(c.csSourced)],
      ['Sales-closed', money(c.salesClosed)],
      ['Overlay', money(c.overlay)],
    ]),
  ];
}

function entryTable(caption, entries, deals, accounts, id) {
  return table(caption, [
    ['Created', (e) => day(e.createTime)],
    ['Deal', (e) => named((deals.get(e.dealId) || {}).name, e.dealId)],
    ['Account', (e) => ((deals.get(e.dealId) || {}).accountId ? accountLink(accounts, deals.get(e.dealId).accountId) : '—')],
    ['Role', (e) => label(e.role, 'CREDIT_ROLE_')],
    ['Kind', (e) => label(e.kind, 'ENTRY_KIND_')],
    ['Amount', (e) => money(e.amount), { num: true }],
    ['Status', (e) => [label(e.status, 'CREDIT_STATUS_'),
      e.status === 'CREDIT_STATUS_HELD' && e.holdUntil ? h('span', { class: 'id' }, `until ${day(e.holdUntil)}`) : null]],
    ['Dispute', (e) => (e.openDisputeId ? h('span', { class: 'tag tag-warn' }, 'open') : '—')],
    ['Reason', (e) => e.reason || ''],
  ], entries, { id });
}

export function render(_arg, params) {
  const [defaultStart, defaultEnd] = thisQuarter();
  const period = {
    startDate: /^\d{4}-\d{2}-\d{2}$/.test(params.from || '') ? params.from : defaultStart,
    endDate: /^\d{4}-\d{2}-\d{2}$/.test(params.to || '') ? params.to : defaultEnd,
  };
  const person = params.person || '';
  // The directory names people and teams; a key that may not list it still
  // gets the form, with a text field instead of a list.
  const people = listAll(CREDIT, 'ListPeople', {}, 'people').catch(() => null);
  // Deal names for the entries (every key may list opportunities).
  const deals = listAll(PIPELINE, 'ListOpportunities', {}, 'opportunities')
    .then((all) => new Map(all.map((o) => [o.opportunityId, o]))).catch(() => new Map());

  const choose = section('Whose statement', async () => {
    const directory = await people;
    const apply = (chosen) => {
      const query = new URLSearchParams({ person: chosen.person, from: chosen.from, to: addDays(chosen.to, 1) });
      location.hash = `#/credits?${query}`;
    };
    const values = { person, from: period.startDate, to: addDays(period.endDate, -1) };
    const form = directory
      ? filterForm([
        ['person', 'Person', [['', 'Choose a person'], ...directory.map((p) =>
          [p.personId, `${p.displayName || p.personId} (${label(p.role, 'PERSON_ROLE_')}, ${p.team || 'no team'})`])]],
        ['from', 'From', 'date'], ['to', 'To (inclusive)', 'date']], values, apply)
      : filterForm([['from', 'From', 'date'], ['to', 'To (inclusive)', 'date']], values,
        (chosen) => apply({ ...chosen, person }));
    return [form, h('p', { class: 'lede' },
      `Entries created from ${period.startDate} to ${addDays(period.endDate, -1)} (UTC). A csm or ae key reads its own statement and its managed team's only.`)];
  }, { id: 'choose' });

  const sections = [choose];
  if (person) {
    sections.push(section(`Statement of ${person}`, async () => {
      const [answer, dealMap, { accounts }, directory] = await Promise.all([
        statement({ participantId: person, ...period }), deals, names(), people]);
      const who = (directory || []).find((p) => p.personId === person);
      const heading = document.querySelector('#statement h2');
      if (who && heading) heading.textContent = `Statement of ${who.displayName || person} (${person}, ${who.team || 'no team'})`;
      const disputes = await listAll(CREDIT, 'ListDisputes', { participantId: person }, 'disputes');
      const entries = answer.entries || [];
      const clawbacks = entries.filter((e) => e.kind === 'ENTRY_KIND_CLAWBACK');
      return [
        (answer.currencies || []).map((c) => [
          currencyFigures(c, 'person-'),
          table(`By role and kind, ${c.currencyCode}`, [
            ['Role', (t) => label(t.role, 'CREDIT_ROLE_')],
            ['Kind', (t) => label(t.kind, 'ENTRY_KIND_')],
            ['Amount', (t) => money(t.amount), { num: true }],
          ], c.totals || [], { id: `totals-${c.currencyCode}` }),
        ]),
        (answer.currencies || []).length ? null : h('p', { class: 'empty' }, 'No entries in this period.'),
        h('h3', {}, 'Entries'),
        entryTable(`${entries.length} entries`, entries, dealMap, accounts, 'entries'),
        h('h3', {}, 'Clawbacks'),
        entryTable('Money recovered after a cancellation', clawbacks, dealMap, accounts, 'clawbacks'),
        h('h3', {}, 'Disputes'),
        table('Disputes of this person\'s entries', [
          ['Opened', (d) => day(d.openTime)],
          ['Deal', (d) => named((dealMap.get(d.dealId) || {}).name, d.dealId)],
          ['Status', (d) => label(d.status, 'DISPUTE_STATUS_')],
          ['Opened by', (d) => d.openedBy || '—'],
          ['Reason', (d) => d.reason || ''],
          ['Resolution', (d) => d.resolutionNote || '—'],
        ], disputes, { id: 'disputes' }),
      ];
    }, { id: 'statement' }));
  }

  sections.push(section('CS-sourced vs Sales-closed', async () => {
    const directory = (await people) || [];
    const teams = [...new Set(directory.map((p) => p.team).filter(Boolean))].sort();
    const org = await statement({ ...period });
    // A team this key may not read is left out; the organisation's figures stand.
    const perTeam = (await Promise.all(teams.map((team) =>
      call(CREDIT, 'GetStatement', { team, ...period, pageSize: 1 }).then((a) => ({ team, a })).catch(() => null))))
      .filter(Boolean);
    const codes = [...new Set((org.currencies || []).map((c) => c.currencyCode))];
    const series = [
      { name: 'CS-sourced', color: COLORS.teal }, { name: 'Sales-closed', color: COLORS.blue },
      { name: 'Overlay', color: COLORS.grey }];
    if (!codes.length) return h('p', { class: 'empty' }, 'No credits in this period.');
    return codes.map((code) => {
      const rows = [
        { team: 'Organisation', c: (org.currencies || []).find((c) => c.currencyCode === code) || {} },
        ...perTeam.map(({ team, a }) => ({ team, c: (a.currencies || []).find((c) => c.currencyCode === code) || {} })),
      ];
      return [
        currencyFigures(rows[0].c, 'org-'),
        groupedBarChart(`CS-sourced vs Sales-closed credit by team, ${code}`, series, rows.map((r) => ({
          label: r.team, values: [num(r.c.csSourced), num(r.c.salesClosed), num(r.c.overlay)],
        }))),
        legend(series),
        table(`By team, ${code}`, [
          ['Team', (r) => r.team],
          ['CS-sourced', (r) => money(r.c.csSourced), { num: true }],
          ['Sales-closed', (r) => money(r.c.salesClosed), { num: true }],
          ['Overlay', (r) => money(r.c.overlay), { num: true }],
          ['Held', (r) => money(r.c.held), { num: true }],
          ['Released', (r) => money(r.c.released), { num: true }],
        ], rows, { id: `teams-${code}` }),
      ];
    });
  }, { id: 'team-view' }));

  return {
    title: 'Credits',
    lede: 'Who earned what from expansion deals: held until the hold period ends, clawed back on an early cancellation.',
    sections,
  };
}
