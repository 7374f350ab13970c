/**
 * avg@k and the unbiased pass@k estimator (Chen et al. 2021): with n samples of which c are
 * right, pass@k = 1 - C(n-c, k) / C(n, k), computed as a running product (no big binomials).
 */
export function passAtK(n: number, c: number, k: number): number {
  if (!(Number.isInteger(n) && Number.isInteger(c) && Number.isInteger(k)) || n < 1 || c < 0 || c > n || k < 1 || k > n)
    throw new RangeError(`passAtK needs integers 0 <= c <= n, 1 <= k <= n (got n=${n}, c=${c}, k=${k})`);
  if (n - c < k) return 1;
  let fail = 1;
  for (let i = n - c + 1; i <= n; i++) fail *= 1 - k / i;
  return 1 - fail;
}

export const mean = (xs: readonly number[]): number => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
