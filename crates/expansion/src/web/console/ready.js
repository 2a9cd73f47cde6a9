// Ready to expand: READY triggers with their reason and motion, and the
// product to sell; SUPPRESSED ones with why. Calls: ListTriggers, and
// GetWhitespace of each account with a READY cross-sell (its unowned
// products and the motion each suggests).

import { HEALTH, PIPELINE, call, listAll, names } from './api.js';
import { accountLink, day, h, label, money, productName, section, table } from './ui.js';

const isUpsell = (motion) => String(motion || '').startsWith('MOTION_UPSELL');

/**
 * What to sell on a trigger: an upsell grows the trigger's own product; a
 * cross-sell sells a whitespace product, the one whose adjacency suggests
 * the same motion first, the largest estimated wallet among equals.
 */
function productToSell(trigger, whitespace) {
  if (isUpsell(trigger.suggestedMotion)) return { productId: trigger.productId, why: 'grow what they own' };
  const candidates = (whitespace || []).slice().sort((a, b) =>
    (b.motion === trigger.suggestedMotion) - (a.motion === trigger.suggestedMotion)
    || Number((b.estimatedAnnualWallet || {}).amount || 0) - Number((a.estimatedAnnualWallet || {}).amount || 0));
  const best = candidates[0];
  if (!best) return null;
  return { productId: best.productId, name: best.name, wallet: best.estimatedAnnualWallet, why: label(best.motion, 'MOTION_') };
}

export function render() {
  const loaded = (async () => {
    const [{ accounts, products }, triggers] = await Promise.all([
      names(),
      listAll(HEALTH, 'ListTriggers', { statuses: ['TRIGGER_STATUS_READY', 'TRIGGER_STATUS_SUPPRESSED'] }, 'triggers'),
    ]);
    const ready = triggers.filter((t) => t.status === 'TRIGGER_STATUS_READY');
    const suppressed = triggers.filter((t) => t.status === 'TRIGGER_STATUS_SUPPRESSED');
    // One whitespace read per account with a READY cross-sell, side by side.
    const needed = [...new Set(ready.filter((t) => !isUpsell(t.suggestedMotion)).map((t) => t.accountId))];
    const whitespace = new Map(await Promise.all(needed.map(async (id) => {
      const answer = await call(PIPELINE, 'GetWhitespace', { accountId: id }).catch(() => ({}));
      return [id, answer.whitespace || []];
    })));
    const byPriority = (a, b) => (b.priority === 'TRIGGER_PRIORITY_HIGH') - (a.priority === 'TRIGGER_PRIORITY_HIGH')
      || String(b.fireTime).localeCompare(String(a.fireTime));
    return { accounts, products, ready: ready.sort(byPriority), suppressed, whitespace };
  })();

  const readySection = section('Ready', async () => {
    const { accounts, products, ready, whitespace } = await loaded;
    return table(`${ready.length} triggers ready, high priority first`, [
      ['Account', (t) => accountLink(accounts, t.accountId)],
      ['Why', (t) => [label(t.kind, 'TRIGGER_KIND_'), h('span', { class: 'id' }, t.reason || '')]],
      ['Motion', (t) => label(t.suggestedMotion, 'MOTION_')],
      ['Priority', (t) => (t.priority === 'TRIGGER_PRIORITY_HIGH'
        ? h('span', { class: 'tag tag-warn' }, 'High') : 'Normal')],
      ['Fired on', (t) => productName(products, t.productId)],
      ['Product to sell', (t) => {
        const pick = productToSell(t, whitespace.get(t.accountId));
        if (!pick) return h('span', { class: 'empty' }, 'no whitespace product');
        const product = products.get(pick.productId);
        return [product ? product.name : pick.name || pick.productId,
          h('span', { class: 'id' }, [pick.why, pick.wallet ? ` · wallet ${money(pick.wallet)}/yr` : ''].join(''))];
      }],
      ['Fired', (t) => day(t.fireTime)],
    ], ready, { id: 'ready' });
  }, { id: 'ready-section' });

  const suppressedSection = section('Suppressed', async () => {
    const { accounts, products, suppressed } = await loaded;
    return table(`${suppressed.length} triggers held back`, [
      ['Account', (t) => accountLink(accounts, t.accountId)],
      ['Product', (t) => productName(products, t.productId)],
      ['Why it fired', (t) => [label(t.kind, 'TRIGGER_KIND_'), h('span', { class: 'id' }, t.reason || '')]],
      ['Motion', (t) => label(t.suggestedMotion, 'MOTION_')],
      ['Why suppressed', (t) => t.suppressionReason || '—'],
    ], suppressed, { id: 'suppressed' });
  }, { id: 'suppressed-section' });

  return {
    title: 'Ready to expand',
    lede: 'What is ready to sell and why, and what is held back until the account is healthier.',
    sections: [readySection, suppressedSection],
  };
}
