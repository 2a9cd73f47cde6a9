// Account: its health broken down by measure and its history (a line
// chart), subscriptions with their latest usage, whitespace and share of
// wallet, open opportunities and handoffs. Calls: GetAccount,
// GetAccountHealth, GetHealthHistory, ListSubscriptions, GetWhitespace,
// GetScorecard (its bands), ListOpportunities (this account), ListHandoffs
// (of its opportunities).

import { HEALTH, PIPELINE, call, listAll, names } from './api.js';
import { COLORS, lineChart } from './charts.js';
import {
  band, day, figures, h, label, money, named, percent, productName, ratio, section, table,
} from './ui.js';

const OPEN = ['STAGE_IDENTIFIED', 'STAGE_EXPLORING', 'STAGE_QUALIFIED', 'STAGE_PROPOSED', 'STAGE_NEGOTIATING'];

function breakdown(score) {
  return table('By measure (weights normalised)', [
    ['Measure', (m) => m.name],
    ['Weight', (m) => m.weight || '0', { num: true }],
    ['Score', (m) => (m.hasData ? m.score : h('span', { class: 'empty' }, 'no data in window')), { num: true }],
  ], score.breakdown || []);
}

export function render(accountId) {
  const id = accountId;
  const account = call(HEALTH, 'GetAccount', { accountId: id }).then((a) => a.account);
  const opportunities = listAll(PIPELINE, 'ListOpportunities', { accountId: id }, 'opportunities');

  const summary = section('Health', async () => {
    const [a, { health }, { products }] = await Promise.all([
      account, call(HEALTH, 'GetAccountHealth', { accountId: id }), names()]);
    const overall = health.overall || {};
    document.title = `${a.name} · Expansion console`;
    const heading = document.querySelector('main h1');
    if (heading) heading.textContent = a.name;
    return [
      figures([
        ['Score', overall.hasScore ? overall.score : '—', 'health-score'],
        ['Band', band(overall.band)],
        ['Coverage', percent(overall.coveragePercent)],
        ['Segment', label(a.segment, 'SEGMENT_')],
        ['Owner CSM', a.ownerCsm || '—'],
        ['Customer since', a.customerSince || '—'],
        ['CSM sentiment', overall.csmSentiment || '—'],
      ]),
      h('p', { class: 'id' }, `${a.accountId}${a.externalRef ? ` · ${a.externalRef.system} ${a.externalRef.id}` : ''}`),
      overall.override ? h('p', {}, h('span', { class: 'tag tag-warn' }, 'Override'),
        ` ${overall.override.score ?? 0} instead of ${overall.computedScore}: ${overall.override.reason || ''} (${overall.override.principal || ''})`) : null,
      h('h3', {}, 'Account'), breakdown(overall),
      (health.products || []).map((p) => [
        h('h3', {}, 'Product: ', productName(products, p.productId)[0], ' ', band(p.band), ` ${p.hasScore ? p.score : ''}`),
        breakdown(p),
      ]),
    ];
  }, { id: 'health' });

  const history = section('Health history', async () => {
    const [points, card] = await Promise.all([
      listAll(HEALTH, 'GetHealthHistory', { accountId: id }, 'points'),
      call(HEALTH, 'GetScorecard', {}).catch(() => ({})),
    ]);
    // The scorecard's bands, shaded behind the line.
    const colors = { HEALTH_BAND_RED: COLORS.red, HEALTH_BAND_YELLOW: COLORS.yellow, HEALTH_BAND_GREEN: COLORS.green };
    let from = 0;
    const bands = ((card.scorecard || {}).bands || []).map((b) => {
      const shaded = { from, to: b.upper || 0, color: colors[b.band] || COLORS.grey };
      from = b.upper || 0;
      return shaded;
    });
    const ordered = points.filter((p) => p.hasScore)
      .sort((a, b) => String(a.computeTime).localeCompare(String(b.computeTime)));
    if (!ordered.length) return h('p', { class: 'empty' }, 'No score recorded yet.');
    return [
      lineChart('Account health score over time', ordered.map((p) => ({ label: day(p.computeTime), value: Number(p.score) })), {
        max: 100, bands, format: String,
      }),
      h('p', { class: 'lede' }, `${ordered.length} scores, from ${day(ordered[0].computeTime)} to ${day(ordered[ordered.length - 1].computeTime)}.`),
    ];
  }, { id: 'history' });

  const subscriptions = section('Subscriptions', async () => {
    const [subs, { products }] = await Promise.all([
      listAll(HEALTH, 'ListSubscriptions', { accountId: id }, 'subscriptions'), names()]);
    return table('Contracts, latest usage against the quota', [
      ['Product', (s) => productName(products, s.productId)],
      ['Tier', (s) => s.tier || '—'],
      ['MRR', (s) => money(s.mrr), { num: true }],
      ['Status', (s) => label(s.status, 'SUBSCRIPTION_STATUS_')],
      ['Start', (s) => s.startDate || '—'],
      ['End', (s) => s.endDate || s.cancelDate || '—'],
      ['Latest usage', (s) => (s.latestUsage
        ? [`${s.latestUsage.value} of ${s.latestUsage.limit || '—'}`, h('span', { class: 'id' },
          `${percent(s.latestUsage.percentOfLimit)} on ${day(s.latestUsage.occurTime)}`)] : '—'), { num: true }],
    ], subs, { id: 'subscriptions' });
  }, { id: 'subscriptions-section' });

  const wallet = section('Whitespace and share of wallet', async () => {
    const ws = await call(PIPELINE, 'GetWhitespace', { accountId: id });
    return [
      (ws.summaries || []).map((s) => figures([
        ['Share of wallet', ratio(s.shareOfWallet), `share-of-wallet-${s.currencyCode}`],
        ['Our spend', money(s.ourSpend)],
        ['Total wallet', money(s.totalWallet)],
        ['Opportunity', money(s.opportunity)],
      ])),
      table('Products they do not own', [
        ['Product', (p) => named(p.name, p.productId)],
        ['Family', (p) => p.family || '—'],
        ['Motion', (p) => label(p.motion, 'MOTION_')],
        ['Estimated wallet / year', (p) => money(p.estimatedAnnualWallet), { num: true }],
      ], ws.whitespace || [], { id: 'whitespace' }),
      table('Wallet estimates in force', [
        ['Area', (w) => w.productArea],
        ['Annual spend', (w) => money(w.annualSpend), { num: true }],
        ['Served by', (w) => [label(w.servedBy, 'WALLET_SERVED_BY_'), w.competitor ? ` (${w.competitor})` : '']],
        ['Since', (w) => w.effectiveDate || '—'],
      ], ws.wallet || []),
    ];
  }, { id: 'wallet' });

  const open = section('Open opportunities', async () => {
    const all = await opportunities;
    const rows = all.filter((o) => OPEN.includes(o.stage));
    return table(`${rows.length} open of ${all.length}`, [
      ['Opportunity', (o) => named(o.name, o.opportunityId)],
      ['Product', (o) => named(o.productName, o.productId)],
      ['Motion', (o) => label(o.motion, 'MOTION_')],
      ['Stage', (o) => [label(o.stage, 'STAGE_'), o.stalled ? h('span', { class: 'tag tag-warn' }, ' stalled') : '']],
      ['Amount', (o) => money(o.amount), { num: true }],
      ['Weighted', (o) => money(o.expectedValue), { num: true }],
      ['Close date', (o) => o.closeDate || '—'],
      ['Owner', (o) => o.owner || '—'],
    ], rows, { id: 'opportunities' });
  }, { id: 'opportunities-section' });

  const handoffs = section('Handoffs', async () => {
    const all = await opportunities;
    const byId = new Map(all.map((o) => [o.opportunityId, o]));
    const rows = (await Promise.all(all.map((o) =>
      listAll(PIPELINE, 'ListHandoffs', { opportunityId: o.opportunityId }, 'handoffs')))).flat();
    return table('CS to Sales', [
      ['Opportunity', (x) => named((byId.get(x.opportunityId) || {}).name, x.opportunityId)],
      ['Status', (x) => [label(x.status, 'HANDOFF_STATUS_'), x.overdue ? h('span', { class: 'tag tag-warn' }, ' overdue') : '']],
      ['Requested by', (x) => x.requestedBy || '—'],
      ['Requested', (x) => day(x.requestTime)],
      ['Due', (x) => day(x.dueTime)],
      ['Accepted by', (x) => x.acceptedBy || '—'],
    ], rows, { id: 'handoffs' });
  }, { id: 'handoffs-section' });

  return {
    title: 'Account',
    sections: [summary, history, subscriptions, wallet, open, handoffs],
  };
}
