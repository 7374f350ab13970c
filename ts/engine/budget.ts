/**
 * Budgets, branch-aware: the token ledger of one request (every branch's new tokens, forced
 * ones included, count against one maxNewTokens) and the two admission rules built on it -
 * what a fork must leave in reserve, and how many KV blocks a request may need at most.
 *
 * The ledger is checked BEFORE a token enters the rollout, so the bound holds exactly; the KV
 * cache's own ledger (openRequest(maxNewTokens)) counts the same tokens again natively as a
 * second line of defence.
 */

export class TokenLedger {
  private usedTokens = 0;

  constructor(readonly maxNewTokens: number) {
    if (!Number.isInteger(maxNewTokens) || maxNewTokens < 0)
      throw new RangeError(`maxNewTokens must be an integer >= 0 (got ${maxNewTokens})`);
  }

  get used(): number {
    return this.usedTokens;
  }

  get remaining(): number {
    return this.maxNewTokens - this.usedTokens;
  }

  /** Takes `n` tokens; false (and nothing taken) when that would pass the bound. */
  take(n = 1): boolean {
    if (this.usedTokens + n > this.maxNewTokens) return false;
    this.usedTokens += n;
    return true;
  }
}

export interface ForkReserve {
  /** Tokens each branch must be able to write after its forced prefix. Default 4. */
  minStepTokens: number;
  /** Tokens kept for the takeaway and answer after the join. Default 16. */
  afterJoinTokens: number;
}

export const DEFAULT_FORK_RESERVE: ForkReserve = { minStepTokens: 4, afterJoinTokens: 16 };

/** New tokens a fork commits to: every branch's forced prefix and minimum step, the join's forced text, the reserve. */
export function forkCost(prefixLengths: readonly number[], joinLength: number, reserve: ForkReserve = DEFAULT_FORK_RESERVE): number {
  return prefixLengths.reduce((a, n) => a + n + reserve.minStepTokens, 0) + joinLength + reserve.afterJoinTokens;
}

/**
 * Most KV blocks one request can hold with forks of up to `maxBranches` children, one open at a
 * time: its tokens' blocks, plus per live child one copied partial tail and one partial last
 * block, plus the frozen parent's tail and one for rounding.
 */
export function maxBlocksPerRequest(promptLength: number, maxNewTokens: number, blockTokens: number, maxBranches: number): number {
  return Math.ceil((promptLength + maxNewTokens) / blockTokens) + 2 * maxBranches + 2;
}
