/** The units a stream's time field may declare (`"x-veil-time"` in a schema, `timeFields` without one). */
export const TIME_UNITS = ['epoch_s', 'epoch_ms', 'iso'] as const
export type TimeUnit = (typeof TIME_UNITS)[number]
