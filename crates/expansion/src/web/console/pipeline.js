// Pipeline: open pipeline by stage and by motion (weighted), win rate by
// motion against the seed's benchmark bands (a chart with the band drawn),
// win rate by product, stalled deals and overdue handoffs. Calls:
// GetPipelineForecast (one forecast per currency), ListOpportunities
// (stalled_only, and all for the handoffs' names), ListHandoffs
// (overdue_only), ListProducts (names).

import { PIPELINE, call, listAll, names } from './api.js';
import { COLORS, barChart, legend, winRateChart } from './charts.js';
import {
  accountLink, day, figures, h, label, money, named, num, productName, ratio, section, table,
} from './ui.js';

function currencySection(forecast, products) {
  const c = forecast.currencyCode;
  const stages = forecast.stages || [];
  const rates = forecast.winRates || [];
  return section(`Pipeline in ${c}`, () => [
    figures([
      ['Open', money(forecast.openAmount), `open-amount-${c}`],
      ['Open, weighted', money(forecast.openWeightedAmount), `open-weighted-${c}`],
      ['Average won deal', money(forecast.avgDealSize)],
      ['Average cycle', forecast.avgCycleDays ? `${forecast.avgCycleDays} days` : '—'],
    ]),
    h('div', { class: 'grid' },
      h('div', {},
        h('h3', {}, 'By stage'),
        barChart(`Weighted pipeline by stage, ${c}`, stages.filter((s) => !String(s.stage).startsWith('STAGE_CLOSED'))
          .map((s) => ({ label: label(s.stage, 'STAGE_'), value: num(s.weightedAmount) }))),
        table('Every stage, pipeline order', [
          ['Stage', (s) => label(s.stage, 'STAGE_')],
          ['Deals', (s) => s.count || '0', { num: true }],
          ['Amount', (s) => money(s.amount), { num: true }],
          ['Weighted', (s) => money(s.weightedAmount), { num: true }],
          ['Moved on', (s) => ratio(s.conversionRate), { num: true }],
        ], stages, { id: `stages-${c}` })),
      h('div', {},
        h('h3', {}, 'By motion (open deals)'),
        table('Open deals by motion', [
          ['Motion', (g) => label(g.key, 'MOTION_')],
          ['Deals', (g) => g.count || '0', { num: true }],
          ['Amount', (g) => money(g.amount), { num: true }],
          ['Weighted', (g) => money(g.weightedAmount), { num: true }],
        ], forecast.byMotion || [], { id: `motions-${c}` }),
        h('h3', {}, 'By owner team (open deals)'),
        table('Open deals by team', [
          ['Team', (g) => g.key || '—'],
          ['Deals', (g) => g.count || '0', { num: true }],
          ['Weighted', (g) => money(g.weightedAmount), { num: true }],
        ], forecast.byOwnerTeam || []))),
    h('h3', {}, 'Win rate by motion against the benchmark band'),
    winRateChart(`Win rate by motion against the seed's benchmark, ${c}`, rates.map((r) => ({
      label: label(r.motion, 'MOTION_'),
      rate: r.winRate ? Number(r.winRate) : null,
      low: r.benchmarkLow ? Number(r.benchmarkLow) : null,
      high: r.benchmarkHigh ? Number(r.benchmarkHigh) : null,
    }))),
    legend([{ name: 'benchmark band', color: COLORS.band }, { name: 'win rate', color: COLORS.blue }]),
    table('Closed deals by motion', [
      ['Motion', (r) => label(r.motion, 'MOTION_')],
      ['Won', (r) => r.won || '0', { num: true }],
      ['Lost', (r) => r.lost || '0', { num: true }],
      ['Win rate', (r) => ratio(r.winRate), { num: true }],
      ['Benchmark', (r) => `${ratio(r.benchmarkLow)} – ${ratio(r.benchmarkHigh)}`, { num: true }],
      ['Verdict', (r) => label(r.verdict, 'BENCHMARK_VERDICT_')],
    ], rates, { id: `win-rates-${c}` }),
    h('h3', {}, 'Win rate by product'),
    table('Products with a closed deal', [
      ['Product', (r) => productName(products, r.productId)],
      ['Won', (r) => r.won || '0', { num: true }],
      ['Lost', (r) => r.lost || '0', { num: true }],
      ['Win rate', (r) => ratio(r.winRate), { num: true }],
    ], forecast.winRatesByProduct || []),
  ], { id: `forecast-${c}` });
}

export function render() {
  const forecasts = Promise.all([call(PIPELINE, 'GetPipelineForecast', {}), names()]);
  // The forecast's sections are known once it answers: one holder section.
  const holder = section('Forecast', async () => {
    const [answer, { products }] = await forecasts;
    const parts = (answer.forecasts || []).map((f) => currencySection(f, products));
    await Promise.all(parts.map((p) => p.ready));
    return parts.length ? parts : h('p', { class: 'empty' }, 'No opportunities yet.');
  }, { id: 'forecast' });

  const stalled = section('Stalled deals', async () => {
    const [rows, { accounts }] = await Promise.all([
      listAll(PIPELINE, 'ListOpportunities', { stalledOnly: true }, 'opportunities'), names()]);
    return table(`${rows.length} open deals longer in their stage than it allows`, [
      ['Opportunity', (o) => named(o.name, o.opportunityId)],
      ['Account', (o) => accountLink(accounts, o.accountId)],
      ['Product', (o) => named(o.productName, o.productId)],
      ['Stage', (o) => label(o.stage, 'STAGE_')],
      ['Days in stage', (o) => o.daysInStage || 0, { num: true }],
      ['Amount', (o) => money(o.amount), { num: true }],
      ['Owner', (o) => o.owner || '—'],
    ], rows, { id: 'stalled' });
  }, { id: 'stalled-section' });

  const overdue = section('Overdue handoffs', async () => {
    const [rows, all, { accounts }] = await Promise.all([
      listAll(PIPELINE, 'ListHandoffs', { overdueOnly: true }, 'handoffs'),
      listAll(PIPELINE, 'ListOpportunities', {}, 'opportunities'),
      names()]);
    const byId = new Map(all.map((o) => [o.opportunityId, o]));
    return table(`${rows.length} handoffs still waiting for Sales after the SLA`, [
      ['Opportunity', (x) => named((byId.get(x.opportunityId) || {}).name, x.opportunityId)],
      ['Account', (x) => accountLink(accounts, (byId.get(x.opportunityId) || {}).accountId)],
      ['Requested by', (x) => x.requestedBy || '—'],
      ['Requested', (x) => day(x.requestTime)],
      ['Due', (x) => day(x.dueTime)],
    ], rows, { id: 'overdue' });
  }, { id: 'overdue-section' });

  return {
    title: 'Pipeline',
    lede: 'Open pipeline weighted by probability, win rates against the benchmark, and what is stuck.',
    sections: [holder, stalled, overdue],
  };
}
