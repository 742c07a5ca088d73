import { compileAccessor, defineOperator, isPlainObject } from '#veil/sdk'

export type MotionClass = 'stationary' | 'walking' | 'vehicle'

/** km/h per unit of the input speed. */
const KMH_PER_UNIT = { kmh: 1, ms: 3.6, knots: 1.852 } as const
type SpeedUnit = keyof typeof KMH_PER_UNIT

/** The settings as the loader hands them over: checked against configSchema, every default filled in. */
interface Settings {
  readonly speed: string
  readonly speed_unit: SpeedUnit
  readonly drop: readonly string[]
  readonly walking_kmh: number
  readonly vehicle_kmh: number
  readonly output: string
}

export default defineOperator({
  name: 'kinematics',
  description: 'Drops heading, altitude and accuracy; replaces the speed with stationary | walking | vehicle',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      speed: { type: 'string', minLength: 1, default: 'vel', description: 'path of the speed (OwnTracks vel, km/h)' },
      speed_unit: { enum: ['kmh', 'ms', 'knots'], default: 'kmh', description: 'unit of the speed' },
      drop: {
        type: 'array',
        items: { type: 'string', minLength: 1 },
        uniqueItems: true,
        default: ['cog', 'alt', 'acc', 'vac'],
        description: 'paths removed outright (heading, altitude, accuracy)',
      },
      walking_kmh: { type: 'number', minimum: 0, default: 1, description: 'below this speed: stationary' },
      vehicle_kmh: { type: 'number', minimum: 0, default: 7, description: 'from this speed on: vehicle' },
      output: { type: 'string', minLength: 1, default: 'motion', description: 'path that receives the class' },
    },
  },
  compile(config) {
    const c = config as Settings
    const unit = c.speed_unit
    const factor = KMH_PER_UNIT[unit]
    if (factor === undefined) throw new Error(`speed_unit must be kmh, ms or knots, got ${String(unit)}`)
    const walking = c.walking_kmh
    const vehicle = c.vehicle_kmh
    if (!(walking >= 0 && Number.isFinite(walking) && vehicle > walking && Number.isFinite(vehicle))) {
      throw new Error(`need 0 ≤ walking_kmh < vehicle_kmh, got ${walking} and ${vehicle}`)
    }
    const speed = compileAccessor(c.speed)
    const output = compileAccessor(c.output)
    const drop = c.drop.map((path) => compileAccessor(path))
    if (drop.some((d) => d.path === output.path)) throw new Error(`output ${output.path} is also listed in drop`)
    const outputIsSpeed = output.path === speed.path

    return (doc) => {
      if (!isPlainObject(doc)) throw new Error('kinematics expects a JSON object')
      const value = speed.get(doc)
      if (!outputIsSpeed) speed.delete(doc)
      for (const path of drop) path.delete(doc)
      // A missing, negative (iOS reports -1 for "unknown") or non-numeric speed gets no class; whatever the output
      // path held before is removed so that a device-supplied value never passes as ours.
      if (typeof value !== 'number' || !(value >= 0) || !Number.isFinite(value)) {
        output.delete(doc)
        return doc
      }
      const kmh = value * factor
      const motion: MotionClass = kmh < walking ? 'stationary' : kmh < vehicle ? 'walking' : 'vehicle'
      if (!output.set(doc, motion)) output.delete(doc)
      return doc
    }
  },
})
