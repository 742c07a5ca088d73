/**
 * Decimal-safe rounding to a step. `x / 0.1` and `k * 0.1` are binary-float operations that produce
 * 2.4999999999999996 or 0.30000000000000004; shifting the decimal point through the number's shortest string form
 * (`2.5e1`) is exact, so a policy that says "0.1" gets values that print with at most one decimal.
 */

/** A step as an integer mantissa and a decimal exponent: 0.25 is { mantissa: 25, decimals: 2 }. */
export interface DecimalStep {
  readonly step: number
  readonly mantissa: number
  readonly decimals: number
}

/** Multiplies by 10^n exactly in decimal terms (no binary rounding of the shift itself). */
export function shiftDecimal(value: number, n: number): number {
  if (n === 0) return value
  const text = String(value)
  const e = text.indexOf('e')
  if (e === -1) return Number(`${text}e${n}`)
  return Number(`${text.slice(0, e)}e${Number(text.slice(e + 1)) + n}`)
}

export function parseStep(step: number, what = 'step'): DecimalStep {
  if (typeof step !== 'number' || !Number.isFinite(step) || step <= 0)
    throw new Error(`${what} must be a positive finite number, got ${String(step)}`)
  const text = String(step)
  const e = text.indexOf('e')
  const mantissaText = e === -1 ? text : text.slice(0, e)
  const exponent = e === -1 ? 0 : Number(text.slice(e + 1))
  const dot = mantissaText.indexOf('.')
  const fraction = dot === -1 ? 0 : mantissaText.length - dot - 1
  let decimals = fraction - exponent
  let mantissa = Number(mantissaText.replace('.', ''))
  if (decimals < 0) {
    mantissa = shiftDecimal(mantissa, -decimals)
    decimals = 0
  }
  if (decimals > 20 || !Number.isSafeInteger(mantissa))
    throw new Error(`${what} ${text} has too many significant digits`)
  return { step, mantissa, decimals }
}

const normalize = (value: number): number => (value === 0 ? 0 : value)
const POW10 = Array.from({ length: 21 }, (_, i) => 10 ** i)
/** How close to a rounding boundary a binary product must be before the exact (string) shift decides. */
const NEAR = 1e-7

/**
 * Turns a count of steps back into a number. An exact integer divided by an exact power of ten is the double
 * nearest to the decimal, i.e. the same as parsing `"<n>e-<d>"`, without building a string.
 */
function fromUnits(k: number, step: DecimalStep): number {
  const n = k * step.mantissa
  if (Math.abs(n) <= Number.MAX_SAFE_INTEGER) return normalize(n / (POW10[step.decimals] as number))
  return normalize(shiftDecimal(n, -step.decimals))
}

/** value / step in steps: the binary product, unless it lies near a boundary where only the decimal shift is exact. */
function unitsOf(value: number, step: DecimalStep, boundary: number): number {
  const units = (value * (POW10[step.decimals] as number)) / step.mantissa
  const fraction = units - Math.floor(units)
  if (
    Math.abs(fraction - boundary) < NEAR ||
    Math.abs(fraction - boundary - 1) < NEAR ||
    Math.abs(fraction - boundary + 1) < NEAR ||
    !Number.isFinite(units)
  ) {
    return shiftDecimal(value, step.decimals) / step.mantissa
  }
  return units
}

/**
 * Past 2^53 steps, a double's own spacing is at least two steps: the value holds nothing finer than the step, so
 * there is nothing to round away, and the arithmetic below would overflow (1e308 / 0.1 is Infinity, which came
 * back as NaN). Such a value is returned as it is. Non-finite values land here too and stay non-finite.
 */
const beyondResolution = (value: number, step: DecimalStep): boolean => !(Math.abs(value) / step.step < 2 ** 53)

/** Nearest multiple of the step; halves go away from zero (2.5 → 3, -2.5 → -3). */
export function roundToStep(value: number, step: DecimalStep): number {
  if (beyondResolution(value, step)) return normalize(value)
  const units = unitsOf(value, step, 0.5)
  return fromUnits(Math.sign(units) * Math.round(Math.abs(units)), step)
}

/** Largest multiple of the step that is ≤ value. */
export function floorToStep(value: number, step: DecimalStep): number {
  if (beyondResolution(value, step)) return normalize(value)
  const units = unitsOf(value, step, 0)
  let k = Math.floor(units)
  // The division can round up onto the next integer (or underflow to -0 for a tiny negative value).
  if (fromUnits(k, step) > value) k -= 1
  return fromUnits(k, step)
}
