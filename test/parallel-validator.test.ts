/**
 * The streaming pre-branch validator: fork decisions on clean streams (whole pieces, one
 * character at a time, token ids), each refusal rule, malformed streams that record faults
 * and go on, clone/joined as the engine uses them, and random streams that never throw.
 */
import { describe, expect, it } from 'vitest';
import { REJECTION_KINDS } from '../ts/parallel/errors.js';
import { NPR_TAGS, type TagIds } from '../ts/parallel/tags.js';
import { type ForkDecision, PreBranchValidator, type ValidatorEvent } from '../ts/parallel/validator.js';
import { rng } from './helpers.js';

const TAG_IDS = Object.fromEntries(NPR_TAGS.map((t, i) => [t, 100 + i])) as TagIds;

function decisions(events: ValidatorEvent[]): ForkDecision[] {
  return events.flatMap((e) => (e.event === 'guideline-closed' ? [e.decision] : []));
}

function feed(text: string, chunk: number, options = {}): { events: ValidatorEvent[]; v: PreBranchValidator } {
  const v = new PreBranchValidator(options);
  const events: ValidatorEvent[] = [];
  for (let i = 0; i < text.length; i += chunk) events.push(...v.push(text.slice(i, i + chunk)));
  events.push(...v.end());
  return { events, v };
}

const CLEAN =
  '<guideline>\n<plan>1: a</plan>\n<plan>2.1: b</plan>\n</guideline>\n<step>\n1: x\n</step>\n<step>\n2.1: y\n</step>\n<takeaway>t</takeaway>\n' +
  '<guideline><plan>1: c</plan></guideline><step>1: z</step><takeaway>u</takeaway> \\boxed{1}';

describe('pre-branch validator', () => {
  it.each([1, 3, 7, 1000])('forks on a clean stream fed in pieces of %i characters', (chunk) => {
    const { events, v } = feed(CLEAN, chunk);
    expect(decisions(events)).toEqual([
      { fork: true, labels: ['1', '2.1'] },
      { fork: true, labels: ['1'] },
    ]);
    expect(v.faults).toEqual([]);
    expect(v.offset).toBe(CLEAN.length);
    const closes = events.filter((e) => e.event === 'guideline-closed').map((e) => (e.event === 'guideline-closed' ? e.at : -1));
    expect(closes).toEqual([CLEAN.indexOf('</guideline>'), CLEAN.lastIndexOf('</guideline>')]);
  });

  it('works on token ids (ids mode)', () => {
    const v = new PreBranchValidator({ tagIds: TAG_IDS });
    const stream: [number, string][] = [
      [TAG_IDS['<guideline>'], ''],
      [TAG_IDS['<plan>'], ''],
      [7, ' 1'],
      [8, ': a'],
      [TAG_IDS['</plan>'], ''],
      [TAG_IDS['<plan>'], ''],
      [9, '2: b'],
      [TAG_IDS['</plan>'], ''],
      [TAG_IDS['</guideline>'], ''],
    ];
    const events = stream.flatMap(([id, piece]) => v.pushToken(id, piece));
    expect(events).toEqual([{ event: 'guideline-closed', at: 8, depth: 1, decision: { fork: true, labels: ['1', '2'] } }]);
    expect(() => v.push('x')).toThrow(TypeError);
  });

  const refusals: [string, string, string, object?][] = [
    [
      'too-many-plans',
      `<guideline>${[1, 2, 3].map((i) => `<plan>${i}: p</plan>`).join('')}</guideline>`,
      'maxBranches',
      { maxBranches: 2 },
    ],
    ['unnumbered-plan', '<guideline><plan>1: a</plan><plan>b</plan></guideline>', 'plan 2'],
    ['duplicate-labels', '<guideline><plan>1: a</plan><plan>1: b</plan></guideline>', 'repeat'],
    ['no-plans', '<guideline>nothing</guideline>', 'no plan'],
    ['unclosed-plan', '<guideline><plan>1: a</guideline>', 'open plan'],
    ['malformed-guideline', '<guideline><plan>1: a</plan></step></guideline>', 'out of place'],
    ['inside-step', '<guideline><plan>1: a</plan></guideline><step>1: <guideline><plan>1: b</plan></guideline>', 'inside a step'],
    [
      'depth-limit',
      '<guideline><plan>1: a</plan></guideline><step>1: <guideline><plan>1: b</plan></guideline><step>1: <guideline><plan>1: c</plan></guideline>',
      'maxDepth 2',
      { maxDepth: 2 },
    ],
    ['malformed-guideline', '<guideline><plan>1: a</plan><guideline><plan>2: b</plan></guideline>', 'out of place'],
    ['nested-guideline', '<guideline><plan>1: a</plan></guideline><guideline><plan>2: b</plan></guideline>', 'out of place'],
    ['not-in-guideline', 'text </guideline>', 'no open'],
  ];

  it.each(refusals)('refuses: %s', (reason, text, words, options) => {
    const { events } = feed(text, 5, options);
    const last = decisions(events).at(-1);
    expect(last).toMatchObject({ fork: false, reason });
    expect(last && !last.fork ? last.message : '').toContain(words);
  });

  it('a nested guideline forks when maxDepth allows it', () => {
    const text = '<guideline><plan>1: a</plan></guideline><step>1: <guideline><plan>1: b</plan><plan>2: c</plan></guideline>';
    const { events } = feed(text, 4, { maxDepth: 2 });
    expect(decisions(events)).toEqual([
      { fork: true, labels: ['1'] },
      { fork: true, labels: ['1', '2'] },
    ]);
    const depths = events.flatMap((e) => (e.event === 'guideline-closed' ? [e.depth] : []));
    expect(depths).toEqual([1, 2]);
  });

  it('records faults on a malformed stream and goes on to fork later', () => {
    const text =
      '</step> oops <takeaway> <guideline><plan>1: a</plan></guideline><step>1: x<takeaway></step><takeaway>t</takeaway>' +
      '<guideline><plan>1: b</plan><plan>2: c</plan></guideline>';
    const { events, v } = feed(text, 2);
    expect(v.faults.map((f) => f.reason)).toEqual([
      'close-step-without-open',
      'takeaway-before-step',
      'takeaway-in-step',
      'unclosed-block',
    ]);
    expect(decisions(events)).toEqual([
      { fork: true, labels: ['1'] },
      { fork: true, labels: ['1', '2'] },
    ]);
    expect(v.faults[0]?.at).toBe(0);
  });

  it('clone() gives each branch its own state; joined() lets the parent take its takeaway', () => {
    const parent = new PreBranchValidator({ maxDepth: 2 });
    const [forked] = decisions(parent.push('<guideline><plan>1: a</plan><plan>2: b</plan></guideline>'));
    expect(forked).toEqual({ fork: true, labels: ['1', '2'] });
    const branches = ['1', '2'].map((l) => {
      const b = parent.clone();
      b.push(`\n<step>\n${l}:`);
      return b;
    });
    expect(decisions(branches[0]?.push(' <guideline><plan>1: n</plan></guideline>') ?? [])).toEqual([{ fork: true, labels: ['1'] }]);
    expect(branches[1]?.push(' done</step>')).toEqual([]);
    expect(branches[1]?.faults).toEqual([]);
    expect(parent.joined()).toBe(true);
    parent.push('<takeaway>t</takeaway>');
    expect(parent.end()).toEqual([]);
    expect(parent.faults).toEqual([]);
  });

  it('random streams never throw and only name known faults', () => {
    const next = rng(99);
    const bits = [...NPR_TAGS, '1: ', '2: ', 'x', '<', 'ste', 'p>', '</', '\n'];
    for (let n = 0; n < 3000; n++) {
      const v = new PreBranchValidator({ maxBranches: 1 + Math.floor(next() * 8), maxDepth: 1 + Math.floor(next() * 3) });
      const len = Math.floor(next() * 40);
      const events: ValidatorEvent[] = [];
      for (let i = 0; i < len; i++) events.push(...v.push(bits[Math.floor(next() * bits.length)] as string));
      events.push(...v.end());
      for (const e of events) {
        if (e.event === 'fault') expect(Object.keys(REJECTION_KINDS)).toContain(e.fault.reason);
        else if (e.decision.fork) expect(e.decision.labels.length).toBeLessThanOrEqual(v.maxBranches);
      }
    }
  });
});
