/**
 * Generates a ValetudoMap v2 for a small apartment: a row of rooms, a hallway (unsegmented floor), another row of
 * rooms, walls with door gaps, plus the cleaning route a robot drives through it. Layer pixels use Valetudo's
 * `compressedPixels` RLE (`[xStart, y, count, ...]` along x) and `dimensions` exactly as its MapLayer computes them.
 */
import type { Rng } from '../random.ts'

export const PIXEL_SIZE = 5
/** Map canvas in cm, the usual Roborock/Dreame 1024 x 1024 grid. */
export const MAP_SIZE = 5120

const WALL = 1
const FLOOR = 2
const FIRST_SEGMENT = 3
/** Valetudo numbers segments from 16 on Roborock firmwares. */
const FIRST_SEGMENT_ID = 16
const DOOR_WIDTH = 16
const LANE_SPACING = 6

export interface Rect {
  readonly x0: number
  readonly y0: number
  readonly x1: number
  readonly y1: number
}

export interface Room extends Rect {
  readonly segmentId: string
  readonly name: string
  /** Centre of the door gap in the wall between the room and the hallway. */
  readonly door: { readonly x: number; readonly y: number }
}

/** Grid-unit geometry of the apartment (global grid coordinates, i.e. cm / PIXEL_SIZE). */
export interface FloorPlan {
  readonly rooms: readonly Room[]
  readonly hall: Rect
  /** Charger position in grid units, against the hallway's top wall. */
  readonly charger: { readonly x: number; readonly y: number }
  readonly layers: readonly MapLayer[]
}

export interface MapLayer {
  readonly __class: 'MapLayer'
  readonly metaData: LayerMeta
  readonly type: 'floor' | 'wall' | 'segment'
  readonly pixels: readonly number[]
  readonly compressedPixels: readonly number[]
  readonly dimensions: Dimensions
}

interface LayerMeta {
  readonly segmentId?: string
  readonly active?: boolean
  readonly name?: string
  readonly area: number
}

interface AxisStats {
  readonly min: number
  readonly max: number
  readonly mid: number
  readonly avg: number
}

interface Dimensions {
  readonly x: AxisStats
  readonly y: AxisStats
  readonly pixelCount: number
}

export interface MapEntity {
  readonly __class: 'PointMapEntity' | 'PathMapEntity' | 'LineMapEntity' | 'PolygonMapEntity'
  readonly metaData: Readonly<Record<string, number>>
  readonly points: readonly number[]
  readonly type: string
}

export interface ValetudoMap {
  readonly __class: 'ValetudoMap'
  readonly metaData: { readonly version: 2; readonly nonce: string; readonly totalLayerArea: number }
  readonly size: { readonly x: number; readonly y: number }
  readonly pixelSize: number
  readonly layers: readonly MapLayer[]
  readonly entities: readonly MapEntity[]
}

/** A labelled raster covering the apartment's bounding box. */
class Grid {
  readonly cells: Uint8Array

  constructor(
    readonly ox: number,
    readonly oy: number,
    readonly width: number,
    readonly height: number,
  ) {
    this.cells = new Uint8Array(width * height)
  }

  fill(rect: Rect, label: number): void {
    for (let y = rect.y0; y <= rect.y1; y++) {
      for (let x = rect.x0; x <= rect.x1; x++) this.cells[(y - this.oy) * this.width + (x - this.ox)] = label
    }
  }
}

/** Splits `[start, end]` into `parts` spans separated by one-pixel walls, each at least `min` wide. */
function splitSpan(rng: Rng, start: number, end: number, parts: number, min: number): [number, number][] {
  const spans: [number, number][] = []
  let from = start
  for (let i = parts; i > 1; i--) {
    const room = rng.int(min, end - from + 1 - i * (min + 1) + min)
    spans.push([from, from + room - 1])
    from += room + 1
  }
  spans.push([from, end])
  return spans
}

export function generateFloorPlan(rng: Rng, roomNames: readonly string[]): FloorPlan {
  const width = rng.int(150, 230)
  const topH = rng.int(70, 100)
  const hallH = rng.int(22, 30)
  const bottomH = rng.int(60, 90)
  const ox = 512 - Math.floor(width / 2) + rng.int(-20, 20)
  const oy = 512 - Math.floor((topH + hallH + bottomH) / 2) + rng.int(-20, 20)
  const grid = new Grid(ox, oy, width + 2, topH + hallH + bottomH + 4)
  grid.fill({ x0: ox, y0: oy, x1: ox + width + 1, y1: oy + grid.height - 1 }, WALL)

  const topY: [number, number] = [oy + 1, oy + topH]
  const hall: Rect = { x0: ox + 1, y0: oy + topH + 2, x1: ox + width, y1: oy + topH + hallH + 1 }
  const bottomY: [number, number] = [hall.y1 + 2, hall.y1 + 1 + bottomH]
  grid.fill(hall, FLOOR)

  const topSpans = splitSpan(rng, ox + 1, ox + width, 3, 40)
  const bottomSpans = splitSpan(rng, ox + 1, ox + width, 2, 60)
  const rects: Rect[] = [
    ...topSpans.map(([x0, x1]) => ({ x0, y0: topY[0], x1, y1: topY[1] })),
    ...bottomSpans.map(([x0, x1]) => ({ x0, y0: bottomY[0], x1, y1: bottomY[1] })),
  ]
  const rooms = rects.map((rect, i): Room => {
    grid.fill(rect, FIRST_SEGMENT + i)
    const door = carveDoor(rng, grid, rect, hall)
    return {
      ...rect,
      door,
      segmentId: String(FIRST_SEGMENT_ID + i),
      name: roomNames[i % roomNames.length] ?? `Raum ${i + 1}`,
    }
  })
  const charger = { x: rng.int(hall.x0 + 10, hall.x1 - 10), y: hall.y0 + 2 }
  return { rooms, hall, charger, layers: buildLayers(grid, rooms) }
}

/** Opens the wall between a room and the hallway, so the robot's route is physically possible. */
function carveDoor(rng: Rng, grid: Grid, room: Rect, hall: Rect): { x: number; y: number } {
  const x0 = rng.int(room.x0 + 2, room.x1 - DOOR_WIDTH - 2)
  const wallY = room.y1 < hall.y0 ? room.y1 + 1 : room.y0 - 1
  grid.fill({ x0, y0: wallY, x1: x0 + DOOR_WIDTH - 1, y1: wallY }, FLOOR)
  return { x: x0 + DOOR_WIDTH / 2, y: wallY }
}

/** Per-label accumulator for RLE runs and the statistics behind `dimensions`. */
class LayerBuilder {
  readonly compressed: number[] = []
  count = 0
  #sumX = 0
  #sumY = 0
  #minX = Infinity
  #maxX = -Infinity
  #minY = Infinity
  #maxY = -Infinity

  addRun(x: number, y: number, length: number): void {
    this.compressed.push(x, y, length)
    this.count += length
    this.#sumX += length * x + (length * (length - 1)) / 2
    this.#sumY += length * y
    this.#minX = Math.min(this.#minX, x)
    this.#maxX = Math.max(this.#maxX, x + length - 1)
    this.#minY = Math.min(this.#minY, y)
    this.#maxY = Math.max(this.#maxY, y)
  }

  dimensions(): Dimensions {
    const axis = (min: number, max: number, sum: number): AxisStats => ({
      min,
      max,
      mid: Math.round((min + max) / 2),
      avg: Math.round(sum / this.count),
    })
    return {
      x: axis(this.#minX, this.#maxX, this.#sumX),
      y: axis(this.#minY, this.#maxY, this.#sumY),
      pixelCount: this.count,
    }
  }
}

function scanRuns(grid: Grid): Map<number, LayerBuilder> {
  const builders = new Map<number, LayerBuilder>()
  for (let row = 0; row < grid.height; row++) {
    let col = 0
    while (col < grid.width) {
      const label = grid.cells[row * grid.width + col] ?? 0
      let end = col + 1
      while (end < grid.width && grid.cells[row * grid.width + end] === label) end++
      if (label !== 0) {
        let builder = builders.get(label)
        if (builder === undefined) builders.set(label, (builder = new LayerBuilder()))
        builder.addRun(grid.ox + col, grid.oy + row, end - col)
      }
      col = end
    }
  }
  return builders
}

function buildLayers(grid: Grid, rooms: readonly Room[]): MapLayer[] {
  const builders = scanRuns(grid)
  const layer = (type: MapLayer['type'], builder: LayerBuilder, meta: Omit<LayerMeta, 'area'>): MapLayer => ({
    __class: 'MapLayer',
    metaData: { ...meta, area: builder.count * PIXEL_SIZE * PIXEL_SIZE },
    type,
    pixels: [],
    compressedPixels: builder.compressed,
    dimensions: builder.dimensions(),
  })
  const layers: MapLayer[] = []
  const floor = builders.get(FLOOR)
  const wall = builders.get(WALL)
  if (floor !== undefined) layers.push(layer('floor', floor, {}))
  if (wall !== undefined) layers.push(layer('wall', wall, {}))
  rooms.forEach((room, i) => {
    const builder = builders.get(FIRST_SEGMENT + i)
    if (builder !== undefined)
      layers.push(layer('segment', builder, { segmentId: room.segmentId, active: false, name: room.name }))
  })
  return layers
}

/** A point of the robot's route, in cm. */
export interface RoutePoint {
  readonly x: number
  readonly y: number
}

/**
 * The planned cleaning run: from the charger, through each room's door, over the room in boustrophedon lanes, and
 * back to the charger. Each lane end is one path point (Valetudo's path entities carry sampled positions).
 */
export function planRoute(rng: Rng, plan: FloorPlan): RoutePoint[] {
  const cm = (v: number): number => v * PIXEL_SIZE + rng.int(-2, 2)
  const hallY = Math.round((plan.hall.y0 + plan.hall.y1) / 2)
  const dock = { x: cm(plan.charger.x), y: cm(plan.charger.y + 3) }
  const route: RoutePoint[] = [dock]
  for (const room of plan.rooms) {
    const viaDoor = [
      { x: cm(room.door.x), y: cm(hallY) },
      { x: cm(room.door.x), y: cm(room.door.y) },
    ]
    route.push(...viaDoor, ...lanes(room, cm), ...viaDoor.reverse())
  }
  route.push(dock)
  return route
}

function lanes(room: Room, cm: (v: number) => number): RoutePoint[] {
  const points: RoutePoint[] = []
  let leftToRight = true
  for (let y = room.y0 + 3; y <= room.y1 - 3; y += LANE_SPACING) {
    const [from, to] = leftToRight ? [room.x0 + 3, room.x1 - 3] : [room.x1 - 3, room.x0 + 3]
    points.push({ x: cm(from), y: cm(y) }, { x: cm(to), y: cm(y) })
    leftToRight = !leftToRight
  }
  return points
}

/** Which room a route point lies in (for the `active` segment flag). */
export function roomAt(plan: FloorPlan, point: RoutePoint): Room | undefined {
  const gx = Math.round(point.x / PIXEL_SIZE)
  const gy = Math.round(point.y / PIXEL_SIZE)
  return plan.rooms.find((r) => gx >= r.x0 - 1 && gx <= r.x1 + 1 && gy >= r.y0 - 1 && gy <= r.y1 + 1)
}

/** Heading in degrees (0..359) from one point to the next, as `robot_position.metaData.angle`. */
export function heading(from: RoutePoint, to: RoutePoint): number {
  const degrees = (Math.atan2(to.y - from.y, to.x - from.x) * 180) / Math.PI
  return Math.round((degrees + 450) % 360)
}

export interface MapState {
  readonly nonce: string
  readonly plan: FloorPlan
  readonly path: readonly RoutePoint[]
  readonly robot: RoutePoint
  readonly robotAngle: number
  readonly activeSegment: string | undefined
  readonly restrictions: readonly MapEntity[]
}

/** Assembles the ValetudoMap JSON object for the current robot state. */
export function buildMap(state: MapState): ValetudoMap {
  const layers = state.plan.layers.map((layer) =>
    layer.type === 'segment'
      ? { ...layer, metaData: { ...layer.metaData, active: layer.metaData.segmentId === state.activeSegment } }
      : layer,
  )
  const totalLayerArea = layers.reduce((sum, layer) => sum + layer.metaData.area, 0)
  const { charger } = state.plan
  const entities: MapEntity[] = [
    {
      __class: 'PointMapEntity',
      metaData: { angle: 90 },
      points: [charger.x * PIXEL_SIZE, charger.y * PIXEL_SIZE],
      type: 'charger_location',
    },
    {
      __class: 'PointMapEntity',
      metaData: { angle: state.robotAngle },
      points: [state.robot.x, state.robot.y],
      type: 'robot_position',
    },
    ...state.restrictions,
  ]
  if (state.path.length > 1) {
    entities.push({
      __class: 'PathMapEntity',
      metaData: {},
      points: state.path.flatMap((p) => [p.x, p.y]),
      type: 'path',
    })
  }
  return {
    __class: 'ValetudoMap',
    metaData: { version: 2, nonce: state.nonce, totalLayerArea },
    size: { x: MAP_SIZE, y: MAP_SIZE },
    pixelSize: PIXEL_SIZE,
    layers,
    entities,
  }
}

/** A virtual wall across one room and a no-go rectangle in another, drawn by the user in the app. */
export function restrictions(rng: Rng, plan: FloorPlan): MapEntity[] {
  const [first, second] = [plan.rooms[0], plan.rooms[plan.rooms.length - 1]]
  if (first === undefined || second === undefined) return []
  const cm = (v: number): number => v * PIXEL_SIZE
  const wallX = rng.int(first.x0 + 10, first.x1 - 10)
  const nx = rng.int(second.x0 + 5, second.x1 - 25)
  const ny = rng.int(second.y0 + 5, second.y1 - 20)
  return [
    {
      __class: 'LineMapEntity',
      metaData: {},
      points: [cm(wallX), cm(first.y0 + 5), cm(wallX), cm(first.y0 + 25)],
      type: 'virtual_wall',
    },
    {
      __class: 'PolygonMapEntity',
      metaData: {},
      points: [cm(nx), cm(ny), cm(nx + 20), cm(ny), cm(nx + 20), cm(ny + 15), cm(nx), cm(ny + 15)],
      type: 'no_go_area',
    },
  ]
}
