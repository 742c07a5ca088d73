import { afterEach, describe, expect, it } from 'vitest'
import { fixture, leaks, shippedPipeline, type ProfilePipeline } from '../testing.ts'

interface Face {
  name: string
  box: Record<string, number>
  filename: string
  base64: string | null
}
type Result = {
  camera: string
  zones: string[]
  match?: Face
  matches?: Face[]
  unknowns?: Face[]
  counts?: Record<string, number>
}

const T0 = Date.UTC(2026, 2, 1, 7, 42, 13)
/** Real Double Take messages: `david` on `living-room` and `back-door`. */
const match = fixture<Result>('camera/doubletake_matches_david.json')
const camera = fixture<Result>('camera/doubletake_cameras_back-door.json')
/** With `detect.match.base64: true` Double Take puts the face crop in the JSON. */
const FACE_B64 = Buffer.concat([
  Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10]),
  Buffer.from('JFIF face crop of John Smith'),
]).toString('base64')

const IDENTIFIERS = [
  'david',
  'John Smith',
  'living-room',
  'back-door',
  'garden_path',
  FACE_B64,
  '2f07d1ad-9252-43fd-9233-2786a36a15a9',
  'dcb772de-d8e8-4074-9bce-15dbba5955c5',
  'compreface',
]

function withCrop(face: Face, name = face.name): Face {
  return { ...face, name, base64: FACE_B64 }
}

describe('doubletake through the shipped camera policy', () => {
  let p: ProfilePipeline
  afterEach(() => p.close())

  it('forwards only the per-event counts to svc: no name, face crop, box, file, zone or camera', async () => {
    p = shippedPipeline()
    const face = match.match as Face
    await p.send(T0, 'double-take/matches/david', match)
    await p.send(T0, 'double-take/matches/John Smith', {
      ...match,
      zones: ['garden_path'],
      match: withCrop(face, 'John Smith'),
    })
    await p.send(T0, 'double-take/matches/unknown', { ...match, match: undefined, unknown: withCrop(face, 'unknown') })
    await p.send(T0, 'double-take/cameras/back-door', camera)
    const withCrops = {
      ...camera,
      zones: ['garden_path'],
      matches: (camera.matches ?? []).map((f) => withCrop(f)),
      unknowns: [withCrop(face, 'unknown')],
    }
    await p.send(T0 + 1000, 'double-take/cameras/back-door', {
      ...withCrops,
      counts: { person: 2, match: 1, miss: 0, unknown: 1 },
    })
    await p.send(T0, 'double-take/cameras/back-door/person', '2')

    expect(p.forwarded.map((f) => [f.domain, f.stream, f.data])).toEqual([
      // Match, miss and unknown counts are face-recognition results: only the person count leaves.
      ['svc', 'cameras', { counts: { person: 1 } }],
      ['svc', 'cameras', { counts: { person: 2 } }],
    ])
    // Matches are one message per named person: recognised (the camera is the device), never forwarded.
    expect(p.results.filter((r) => r.stream === 'matches').map((r) => r.dropped)).toEqual(
      Array(3).fill({ stage: 'filter', reason: 'no_policy' }),
    )
    expect(p.results.find((r) => r.stream === 'person')?.dropped).toEqual({ stage: 'filter', reason: 'no_policy' })
    for (const f of p.forwarded) {
      expect(f.topic).toMatch(/^veil\/svc\/camera\/[a-z2-7]{26}\/cameras$/)
      expect(f.text).not.toMatch(/name|box|base64|filename|zone|camera"|confidence/)
    }
    expect(leaks(p.forwarded, IDENTIFIERS, p.audit)).toEqual([])
  })

  it('drops what Double Take does not send', async () => {
    p = shippedPipeline()
    const cases: [string, string][] = [
      ['double-take/matches/david', '{"match":{"name":"david"}}'], // no camera: no device
      ['double-take/cameras/back-door', '{"camera":"back-door","counts":{"person":-1}}'],
      ['double-take/cameras/back-door/person', 'one'],
    ]
    for (const [topic, payload] of cases)
      expect((await p.send(T0, topic, payload)).dropped, topic).toMatchObject({
        stage: expect.stringMatching(/classify|decode|validate/),
      })
    // Errors are Double Take's own (no camera): known, opaque, and no policy can forward them.
    const error = '{"message":"compreface process error: connect ECONNREFUSED 192.168.1.20:8000","stack":"Error: ..."}'
    for (const payload of ['', error])
      expect((await p.send(T0, 'double-take/errors', payload)).dropped).toEqual({
        stage: 'filter',
        reason: 'no_policy',
      })
    expect(p.forwarded).toEqual([])
  })
})
