// Portfolio: every account by health band (a distribution chart), with its
// trend, coverage, override and owner CSM; filtered by band, segment, CSM.
// Calls: ListAccountHealth (band and CSM filters), ListAccounts and
// ListProducts (names; the segment filter is applied to the accounts).

import { HEALTH, listAll, names } from './api.js';
import { COLORS, barChart } from './charts.js';
import { accountLink, band, day, filterForm, h, label, percent, section, table } from './ui.js';

const BANDS = [
  ['HEALTH_BAND_RED', 'Red', COLORS.red],
  ['HEALTH_BAND_YELLOW', 'Yellow', COLORS.yellow],
  ['HEALTH_BAND_GREEN', 'Green', COLORS.green],
];
const SEGMENTS = [['SEGMENT_SMB', 'SMB'], ['SEGMENT_MID_MARKET', 'Mid-market'], ['SEGMENT_ENTERPRISE', 'Enterprise']];
const ARROWS = { TREND_UP: '▲ up', TREND_DOWN: '▼ down', TREND_SAME: '▬ same' };

function trend(value) {
  return value ? ARROWS[value] || label(value, 'TREND_') : '—';
}

function override(score) {
  const o = score.override;
  if (!o) return '—';
  return [`${o.score ?? 0} (computed ${score.computedScore || '—'})`, h('span', { class: 'id' }, o.reason || ''),
    o.expireTime ? h('span', { class: 'id' }, `until ${day(o.expireTime)}`) : null];
}

export function render(_arg, params) {
  const filters = { band: params.band || '', segment: params.segment || '', csm: params.csm || '' };
  // Read once, shared by the filter form, the chart and the table.
  const loaded = (async () => {
    const { accounts, products } = await names();
    const scores = await listAll(HEALTH, 'ListAccountHealth', {
      bands: filters.band ? [filters.band] : [],
      ownerCsm: filters.csm,
      sort: 'HEALTH_SORT_ORDER_SCORE_ASCENDING',
    }, 'scores');
    const inSegment = (id) => !filters.segment || (accounts.get(id) || {}).segment === filters.segment;
    const rows = scores.filter((s) => !s.productId && inSegment(s.accountId));
    return { accounts, products, rows };
  })();

  const chart = section('Accounts by health band', async () => {
    const { accounts, rows } = await loaded;
    const counts = BANDS.map(([value, name, color]) => ({
      label: name, color, value: rows.filter((r) => r.band === value).length,
    }));
    // Accounts in the filter with no score yet (no signal in any measure's window).
    const scored = new Set(rows.filter((r) => r.hasScore).map((r) => r.accountId));
    const unscored = filters.band ? 0 : [...accounts.values()].filter((a) =>
      !scored.has(a.accountId)
      && (!filters.segment || a.segment === filters.segment)
      && (!filters.csm || a.ownerCsm === filters.csm)).length;
    counts.push({ label: 'No score', color: COLORS.grey, value: unscored });
    return [
      barChart('Accounts per health band', counts, { format: String }),
      h('p', { id: 'band-counts' }, counts.map((c) => `${c.label}: ${c.value}`).join(' · ')),
    ];
  }, { id: 'distribution' });

  const list = section('Accounts', async () => {
    const { accounts, rows } = await loaded;
    const csms = [...new Set([...accounts.values()].map((a) => a.ownerCsm).filter(Boolean))].sort();
    const form = filterForm([
      ['band', 'Band', [['', 'Any band'], ...BANDS.map(([v, n]) => [v, n])]],
      ['segment', 'Segment', [['', 'Any segment'], ...SEGMENTS]],
      ['csm', 'Owner CSM', [['', 'Any CSM'], ...csms.map((c) => [c, c])]],
    ], filters, (chosen) => {
      const query = new URLSearchParams(Object.entries(chosen).filter(([, v]) => v));
      location.hash = `#/portfolio?${query}`;
    });
    return [form, table(`${rows.length} accounts, lowest score first`, [
      ['Account', (r) => accountLink(accounts, r.accountId)],
      ['Segment', (r) => label((accounts.get(r.accountId) || {}).segment, 'SEGMENT_')],
      ['Owner CSM', (r) => (accounts.get(r.accountId) || {}).ownerCsm || '—'],
      ['Score', (r) => (r.hasScore ? r.score : '—'), { num: true }],
      ['Band', (r) => band(r.band)],
      ['Trend (last)', (r) => trend(r.trendVsPrevious)],
      ['Trend (30 days)', (r) => trend(r.trendVs30Days)],
      ['Coverage', (r) => percent(r.coveragePercent), { num: true }],
      ['Override', override],
      ['CSM sentiment', (r) => r.csmSentiment || '—', { num: true }],
    ], rows, { id: 'accounts' })];
  }, { id: 'portfolio' });

  return {
    title: 'Portfolio',
    lede: 'Every account by its health band. Follow a name to the account.',
    sections: [chart, list],
  };
}
