import { defineOperator, isPlainObject } from '#veil/sdk'

/**
 * What a map becomes: one number, nothing that draws the home (privacy.md P13). It is the mapped floor area, the
 * size of the home, so the shipped policies do not forward it (job_area reports what a cleaning job covered).
 */
export interface MinimizedMap {
  floor_m2: number
}

const CM2_PER_M2 = 10_000

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0
}

/** Area of one layer in cm², from the cheapest source that is present; throws when none is. */
function layerArea(layer: Record<string, unknown>, pixelSize: number | undefined, index: number): number {
  const meta = layer.metaData
  if (isPlainObject(meta) && meta.area !== undefined) {
    if (!isCount(meta.area)) throw new Error(`map_minimize: layers[${index}].metaData.area is not an area`)
    return meta.area
  }
  const dimensions = layer.dimensions
  const needSize = (): number => {
    if (pixelSize === undefined)
      throw new Error('map_minimize: pixelSize is needed to measure layers without metaData.area')
    return pixelSize * pixelSize
  }
  if (isPlainObject(dimensions) && dimensions.pixelCount !== undefined) {
    if (!isCount(dimensions.pixelCount))
      throw new Error(`map_minimize: layers[${index}].dimensions.pixelCount is not a count`)
    return dimensions.pixelCount * needSize()
  }
  const compressed = layer.compressedPixels
  if (
    Array.isArray(compressed) &&
    (compressed.length > 0 || !Array.isArray(layer.pixels) || layer.pixels.length === 0)
  ) {
    // [xStart, y, count, …]: the run lengths add up to the pixel count.
    if (compressed.length % 3 !== 0)
      throw new Error(`map_minimize: layers[${index}].compressedPixels is not [x, y, count] triples`)
    let pixels = 0
    for (let i = 2; i < compressed.length; i += 3) {
      const count: unknown = compressed[i]
      if (!isCount(count)) throw new Error(`map_minimize: layers[${index}].compressedPixels has a bad run length`)
      pixels += count
    }
    return pixels * needSize()
  }
  const plain = layer.pixels
  if (Array.isArray(plain)) {
    // Legacy (metaData.version 1) maps: [x, y, x, y, …].
    if (plain.length % 2 !== 0) throw new Error(`map_minimize: layers[${index}].pixels is not [x, y] pairs`)
    return (plain.length / 2) * needSize()
  }
  throw new Error(`map_minimize: layers[${index}] has no area, pixelCount or pixels`)
}

/**
 * Replaces a Valetudo map with `{floor_m2}` (privacy.md §1 `map_minimize`, §2.4, P13). A map is the floor plan of
 * a home: room sizes and names, where people sleep, the robot's path through the rooms (BBC17, MITTR22). What is
 * left is the mapped floor area, which is the size of the home and leaves with every map update: the shipped
 * policies do not use this operator (issue 13 part 8) but job_area on the robot's statistics. The segment count
 * (the number of rooms) is not reported.
 *
 * Area rule: floor area = floor layers + segment layers, walls excluded. In Valetudo the floor layer holds the
 * pixels that belong to no segment, so the two are disjoint and the sum is exact (floor + segments + walls equals
 * `metaData.totalLayerArea` on every fixture). Taking only the segments when there are any would lose real floor:
 * on the Viomi V6 fixture the unsegmented floor is 43 % of the area. One firmware (Dreame 1C, 1096) also sends a
 * floor layer that mostly lies over the segments; the sum then over-counts by at most that layer (≤ 2 m² on the
 * fixtures, below one 5 m² step). An exact union would need every pixel, which the allowlist need not pass.
 */
export default defineOperator({
  name: 'map_minimize',
  description: 'Replaces a Valetudo map with its mapped floor area (rounded): the size of the home, no room count',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: { area_step_m2: { type: 'number', exclusiveMinimum: 0, default: 5 } },
  },
  compile(config) {
    // Checked against configSchema by the loader, its default filled in.
    const step: unknown = (config as { readonly area_step_m2: number }).area_step_m2
    if (typeof step !== 'number' || !Number.isFinite(step) || step <= 0)
      throw new Error(`area_step_m2 must be a positive number, not ${String(step)}`)

    return (doc): MinimizedMap => {
      if (!isPlainObject(doc) || !Array.isArray(doc.layers))
        throw new Error('map_minimize: not a Valetudo map (no layers)')
      const size = doc.pixelSize
      if (size !== undefined && !(typeof size === 'number' && Number.isFinite(size) && size > 0)) {
        throw new Error('map_minimize: pixelSize is not a positive number')
      }
      let cm2 = 0
      const layers: readonly unknown[] = doc.layers
      for (let i = 0; i < layers.length; i++) {
        const layer = layers[i]
        if (!isPlainObject(layer) || typeof layer.type !== 'string')
          throw new Error(`map_minimize: layers[${i}] is not a map layer`)
        if (layer.type !== 'segment' && layer.type !== 'floor') continue
        cm2 += layerArea(layer, size, i)
      }
      // Areas near Number.MAX_VALUE add up to Infinity, which would leave as null.
      if (!Number.isFinite(cm2)) throw new Error('map_minimize: the area is out of range')
      const rounded = Math.round(cm2 / CM2_PER_M2 / step) * step
      // toPrecision: a fractional step (0.1 × 3) must not print as 0.30000000000000004.
      return { floor_m2: Number(rounded.toPrecision(12)) }
    }
  },
})
