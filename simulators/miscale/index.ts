/**
 * Body-composition scale bridged by lolouk44/xiaomi_mi_scale: one weigh-in per tick on `miscale/<USER NAME>/weight`,
 * a JSON string the bridge assembles by hand with two-decimal floats, retained (its MQTT_RETAIN default), QoS 0.
 * The body metrics follow the formulas of the bridge's Xiaomi_Scale_Body_Metrics so values are consistent.
 */
import { checkDeviceCount, listCanary } from '../canary.ts'
import { fixed, jsonMessage, textMessage } from '../format.ts'
import type { Json } from '../format.ts'
import { deriveSeed, Rng } from '../random.ts'
import type { ClientIdentity, SimDevice, SimMessage, SimulatorProfile } from '../types.ts'

const USER_NAMES = ['CanaryErin', 'CanaryGrace', 'CanaryJudy', 'CanaryMallory', 'CanaryOlivia', 'CanaryRupert']
const PREFIX = 'miscale'
const BODY_TYPES = [
  'Obese',
  'Overweight',
  'Thick-set',
  'Lack-exerscise', // sic: the bridge's spelling, which consumers match on
  'Balanced',
  'Balanced-muscular',
  'Skinny',
  'Balanced-skinny',
  'Skinny-muscular',
]
const YEAR_MS = 365 * 86_400_000

type Sex = 'male' | 'female'

/** A configured user of the bridge (`USERS` in its options.json). */
interface ScaleUser {
  readonly name: string
  readonly sex: Sex
  readonly heightCm: number
  readonly birthMs: number
  readonly baseWeight: number
}

interface Reading {
  readonly weight: number
  readonly heightCm: number
  readonly age: number
  readonly sex: Sex
  readonly impedance: number
}

const clamp = (value: number, min: number, max: number): number => Math.min(max, Math.max(min, value))

function leanBodyMass(r: Reading): number {
  const h = r.heightCm
  return (h * 9.058 * h) / 10_000 + r.weight * 0.32 + 12.226 - r.impedance * 0.0068 - r.age * 0.0542
}

function basalMetabolism(r: Reading): number {
  const bmr =
    r.sex === 'female'
      ? 864.6 + r.weight * 10.2036 - r.heightCm * 0.39336 - r.age * 6.204
      : 877.8 + r.weight * 14.916 - r.heightCm * 0.726 - r.age * 8.976
  return clamp(bmr, 500, 10_000)
}

function fatPercentage(r: Reading): number {
  const offset = r.sex === 'male' ? 0.8 : r.age <= 49 ? 9.25 : 7.25
  let coefficient = 1
  if (r.sex === 'male' && r.weight < 61) coefficient = 0.98
  else if (r.sex === 'female' && r.weight > 60) coefficient = 0.96 * (r.heightCm > 160 ? 1.03 : 1)
  else if (r.sex === 'female' && r.weight < 50) coefficient = 1.02 * (r.heightCm > 160 ? 1.03 : 1)
  const fat = (1 - ((leanBodyMass(r) - offset) * coefficient) / r.weight) * 100
  return clamp(fat > 63 ? 75 : fat, 5, 75)
}

function waterPercentage(r: Reading): number {
  const water = (100 - fatPercentage(r)) * 0.7
  const corrected = water * (water <= 50 ? 1.02 : 0.98)
  return clamp(corrected >= 65 ? 75 : corrected, 35, 75)
}

function boneMass(r: Reading): number {
  const base = r.sex === 'female' ? 0.245691014 : 0.18016894
  const bone = leanBodyMass(r) * 0.05158 - base
  return clamp(bone > 2.2 ? bone + 0.1 : bone - 0.1, 0.5, 8)
}

function muscleMass(r: Reading): number {
  return clamp(r.weight - (fatPercentage(r) / 100) * r.weight - boneMass(r), 10, 120)
}

function visceralFat(r: Reading): number {
  const h = r.heightCm
  if (r.sex === 'female') {
    const denominator = h * 1.45 + h * 0.1158 * h - 120
    return clamp((r.weight * 500) / denominator - 6 + r.age * 0.07, 1, 50)
  }
  if (h < r.weight * 1.6) {
    const denominator = -(h * 0.4 - h * (h * 0.0826))
    return clamp((r.weight * 305) / (denominator + 48) - 2.9 + r.age * 0.15, 1, 50)
  }
  return clamp(-(h * 0.143 - r.weight * (0.765 - h * 0.0015)) + r.age * 0.15 - 5, 1, 50)
}

function metabolicAge(r: Reading): number {
  const age =
    r.sex === 'female'
      ? r.heightCm * -1.1165 + r.weight * 1.5784 + r.age * 0.4615 + r.impedance * 0.0415 + 83.2548
      : r.heightCm * -0.7471 + r.weight * 0.9161 + r.age * 0.4184 + r.impedance * 0.0517 + 54.2267
  return clamp(age, 15, 80)
}

/** Nine-way body type from fat and muscle against simplified healthy ranges (the bridge's tables vary by age). */
function bodyType(r: Reading): string {
  const [fatLow, fatHigh] = r.sex === 'female' ? [21, 35] : [11, 22]
  const [muscleLow, muscleHigh] = r.sex === 'female' ? [36.5, 42.5] : [49.4, 59.4]
  const fat = fatPercentage(r)
  const muscle = muscleMass(r)
  const fatFactor = fat > fatHigh ? 0 : fat < fatLow ? 2 : 1
  const muscleFactor = muscle > muscleHigh ? 2 : muscle < muscleLow ? 0 : 1
  return BODY_TYPES[fatFactor * 3 + muscleFactor] ?? 'Balanced'
}

class MiScale implements SimDevice {
  readonly id: string
  readonly canaries: readonly string[]
  readonly #rng: Rng
  readonly #user: ScaleUser
  /** Mi Body Composition Scale (impedance) or the plain Mi Smart Scale, which yields only weight-based metrics. */
  readonly #hasImpedance: boolean
  #weight: number

  constructor(index: number, seed: number) {
    this.#rng = new Rng(deriveSeed(seed, 'miscale', index))
    this.id = listCanary(USER_NAMES, index, (hex) => `CanaryScaleUser${hex}`)
    this.canaries = [this.id]
    const sex: Sex = this.#rng.chance(0.5) ? 'female' : 'male'
    const heightCm = Math.round(sex === 'female' ? this.#rng.gaussian(166, 6) : this.#rng.gaussian(179, 7))
    const bmi = this.#rng.float(19, 30)
    this.#user = {
      name: this.id,
      sex,
      heightCm,
      birthMs: Date.UTC(this.#rng.int(1950, 2004), this.#rng.int(0, 11), this.#rng.int(1, 28)),
      baseWeight: (bmi * heightCm * heightCm) / 10_000,
    }
    this.#hasImpedance = index % 4 !== 3
    this.#weight = this.#user.baseWeight
  }

  /** Home Assistant discovery, retained, published by the bridge at start-up (string-built like the payload). */
  start(): SimMessage[] {
    const name = this.#user.name
    const topic = `${PREFIX}/${name}/weight`
    const config =
      `{"name": "${name} Weight","state_topic": "${topic}","value_template": "{{ value_json.weight }}",` +
      `"json_attributes_topic": "${topic}","icon": "mdi:scale-bathroom","state_class": "measurement"}`
    return [textMessage(`homeassistant/sensor/${PREFIX}/${name}/config`, config, 0, true)]
  }

  tick(nowMs: number): SimMessage[] {
    // Day-to-day weight drifts slowly around the user's baseline; the scale resolves 50 g.
    this.#weight += this.#rng.gaussian(0, 0.25) + (this.#user.baseWeight - this.#weight) * 0.1
    const weight = Math.round(this.#weight * 20) / 20
    const reading: Reading = {
      weight,
      heightCm: this.#user.heightCm,
      age: Math.abs(nowMs - this.#user.birthMs) / YEAR_MS,
      sex: this.#user.sex,
      impedance: this.#hasImpedance ? Math.round(this.#rng.gaussian(500, 25)) : 0,
    }
    return [jsonMessage(`${PREFIX}/${this.id}/weight`, this.#payload(reading, nowMs), 0, true)]
  }

  #payload(r: Reading, nowMs: number): Json {
    const base = {
      weight: fixed(r.weight, 2),
      weight_unit: 'kg',
      bmi: fixed(clamp(r.weight / (r.heightCm / 100) ** 2, 10, 90), 2),
      basal_metabolism: fixed(basalMetabolism({ ...r, impedance: 0 }), 2),
      visceral_fat: fixed(visceralFat(r), 2),
    }
    const composition = this.#hasImpedance
      ? {
          lean_body_mass: fixed(leanBodyMass(r), 2),
          body_fat: fixed(fatPercentage(r), 2),
          water: fixed(waterPercentage(r), 2),
          bone_mass: fixed(boneMass(r), 2),
          muscle_mass: fixed(muscleMass(r), 2),
          protein: fixed(clamp((muscleMass(r) / r.weight) * 100 - waterPercentage(r), 5, 32), 2),
          body_type: bodyType(r),
          metabolic_age: fixed(metabolicAge(r), 0),
          impedance: fixed(r.impedance, 0),
        }
      : {}
    // Python's strftime of local time with a literal "+00:00"; UTC here keeps runs independent of the host TZ.
    return { ...base, ...composition, timestamp: `${new Date(nowMs).toISOString().slice(0, 19)}+00:00` }
  }
}

export const miscaleProfile: SimulatorProfile = {
  name: 'miscale',
  category: 'body_scale',
  description:
    'Xiaomi Mi scale via lolouk44/xiaomi_mi_scale: weight and body composition per user, user name in the topic',
  variants: 4,
  createDevices(count: number, seed: number): SimDevice[] {
    checkDeviceCount('miscale', count)
    return Array.from({ length: count }, (_, i) => new MiScale(i, seed))
  },
}

/** paho's `publish.single` connects with an empty client id (the broker assigns one) and sets no will. */
export function miscaleIdentity(): ClientIdentity {
  return { clientId: '', clean: true }
}
