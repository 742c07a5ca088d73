/**
 * The deepest nesting of arrays and objects Veil handles anywhere: JSON payloads are refused past it before they
 * are parsed (the `jsonDepth` limit's default), and every recursive walker (operators' content gates, the protobuf
 * Filtered encoder) refuses past it rather than overflow the stack. Far above what devices send (the deepest
 * fixture, a Zigbee2MQTT bridge/info, nests 12), far below what costs memory or stack: JSON.parse copes with any
 * depth, but recursive walkers (JSON.stringify, ajv, operators) overflow near 10 000 levels. One number, so that a
 * document the decoder lets through is one every later stage can walk.
 */
export const MAX_NESTING = 64
