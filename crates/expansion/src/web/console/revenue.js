// Revenue: the MRR bridge month by month (opening + new + cross-sell +
// upsell − contraction − churn = closing) as a chart and a table, NRR, GRR
// and cross-sell penetration, per currency, for any range of months; and
// the range as one period. Calls: GetRevenueMetrics once per month and once
// for the whole range.

import { HEALTH, call } from './api.js';
import { COLORS, groupedBarChart, legend, lineChart } from './charts.js';
import { addMonths, figures, filterForm, h, money, num, ratio, section, table, today } from './ui.js';

const MOVES = [
  ['newMrr', 'New', COLORS.teal, 1],
  ['crossSellMrr', 'Cross-sell', COLORS.blue, 1],
  ['upsellMrr', 'Upsell', COLORS.purple, 1],
  ['contractionMrr', 'Contraction', COLORS.orange, -1],
  ['churnedMrr', 'Churn', COLORS.red, -1],
];
const MAX_MONTHS = 36;

function months(from, to) {
  const list = [];
  for (let m = from; m <= to && list.length < MAX_MONTHS; m = addMonths(m, 1)) list.push(m);
  return list;
}

function currencyView(code, perMonth, range) {
  const rows = perMonth.map(({ month, answer }) => ({
    month, m: (answer.currencies || []).find((c) => c.currencyCode === code) || { currencyCode: code },
  }));
  const total = (range.currencies || []).find((c) => c.currencyCode === code) || {};
  return section(`MRR bridge in ${code}`, () => [
    figures([
      [`Opening ${range.startDate}`, money(total.openingMrr)],
      ['Closing', money(total.closingMrr), `closing-${code}`],
      ['NRR', ratio(total.nrr), `nrr-${code}`],
      ['GRR', ratio(total.grr), `grr-${code}`],
      ['Cross-sell penetration', ratio(total.crossSellPenetration), `penetration-${code}`],
      ['Products per account', total.productsPerAccount || '—'],
      ['Cross-sell MRR', money(total.crossSellMrr), `cross-sell-${code}`],
    ]),
    groupedBarChart(`MRR movements per month, ${code}`, MOVES.map(([, name, color]) => ({ name, color })),
      rows.map(({ month, m }) => ({ label: month.slice(2), values: MOVES.map(([f, , , sign]) => sign * num(m[f])) }))),
    legend(MOVES.map(([, name, color]) => ({ name, color }))),
    lineChart(`Closing MRR per month, ${code}`, rows.map(({ month, m }) => ({ label: month.slice(2), value: num(m.closingMrr) }))),
    table(`Month by month, ${code}: opening + new + cross-sell + upsell − contraction − churn = closing`, [
      ['Month', (r) => r.month],
      ['Opening', (r) => money(r.m.openingMrr), { num: true }],
      ...MOVES.map(([field, name]) => [name, (r) => money(r.m[field]), { num: true }]),
      ['Closing', (r) => money(r.m.closingMrr), { num: true }],
      ['NRR', (r) => ratio(r.m.nrr), { num: true }],
      ['GRR', (r) => ratio(r.m.grr), { num: true }],
      ['Penetration', (r) => ratio(r.m.crossSellPenetration), { num: true }],
    ], rows, {
      id: `bridge-${code}`,
      foot: ['Range', money(total.openingMrr), ...MOVES.map(([f]) => money(total[f])), money(total.closingMrr),
        ratio(total.nrr), ratio(total.grr), ratio(total.crossSellPenetration)],
    }),
  ], { id: `revenue-${code}` });
}

export function render(_arg, params) {
  const thisMonth = today().slice(0, 7);
  const to = /^\d{4}-\d{2}$/.test(params.to || '') ? params.to : thisMonth;
  const from = /^\d{4}-\d{2}$/.test(params.from || '') && params.from <= to ? params.from : addMonths(to, -11);
  const list = months(from, to);
  const last = list[list.length - 1];

  const holder = section('Range', async () => {
    const [range, ...perMonth] = await Promise.all([
      call(HEALTH, 'GetRevenueMetrics', { startDate: `${from}-01`, endDate: `${addMonths(last, 1)}-01` }),
      ...list.map((month) => call(HEALTH, 'GetRevenueMetrics', { month }).then((answer) => ({ month, answer }))),
    ]);
    const codes = [...new Set([range, ...perMonth.map((p) => p.answer)]
      .flatMap((a) => (a.currencies || []).map((c) => c.currencyCode)))].sort();
    const form = filterForm([['from', 'From month', 'month'], ['to', 'To month', 'month']], { from, to },
      (chosen) => { location.hash = `#/revenue?${new URLSearchParams(chosen)}`; });
    const views = codes.map((code) => currencyView(code, perMonth, range));
    await Promise.all(views.map((v) => v.ready));
    return [form,
      h('p', { class: 'lede' }, `${list.length} months, ${from} to ${last}${list.length === MAX_MONTHS ? ` (at most ${MAX_MONTHS})` : ''}; each currency apart, never summed.`),
      views.length ? views : h('p', { class: 'empty' }, 'No revenue in this range.')];
  }, { id: 'revenue' });

  return {
    title: 'Revenue',
    lede: 'Where MRR came from and went, month by month.',
    sections: [holder],
  };
}
