import { afterEach, describe, expect, it } from 'vitest'
import { leaks, shippedPipeline, type ProfilePipeline } from '../testing.ts'

const T0 = Date.UTC(2026, 2, 1, 7)

describe('frigate audio and active counts', () => {
  let p: ProfilePipeline
  afterEach(() => p.close())

  it('classifies audio detection, levels, transcriptions and active counts, and forwards none of them', async () => {
    p = shippedPipeline(['camera_exact_times'])
    const inputs: [string, string, string][] = [
      ['frigate/canary_porch/audio/speech', 'ON', 'audio'],
      ['frigate/canary_porch/audio/bark', 'OFF', 'audio'],
      ['frigate/canary_porch/audio/dBFS', '-41.2', 'audio_level'],
      ['frigate/canary_porch/audio/rms', '388.0', 'audio_level'],
      [
        'frigate/canary_porch/audio/transcription',
        'Canary Anna, the spare key is under the mat',
        'audio_transcription',
      ],
      ['frigate/canary_porch/person/active', '1', 'active_count'],
      ['frigate/canary_porch/all/active', '2', 'active_count'],
      ['frigate/canary_garden_zone/car/active', '0', 'active_count'],
    ]
    for (const [topic, payload, stream] of inputs) {
      const result = await p.send(T0, topic, payload)
      expect(result.stream, topic).toBe(stream)
      expect(result.dropped, topic).toEqual({ stage: 'filter', reason: 'no_policy' })
    }
    for (const [topic, payload] of [
      ['frigate/canary_porch/audio/speech', 'LOUD'],
      ['frigate/canary_porch/audio/dBFS', 'quiet'],
      ['frigate/canary_porch/person/active', '-1'],
    ]) {
      expect((await p.send(T0, topic as string, payload as string)).dropped?.stage, `${topic} ${payload}`).toMatch(
        /decode|validate/,
      )
    }
    expect(p.forwarded).toEqual([])
    expect(leaks(p.forwarded, ['canary_porch', 'Canary Anna', 'spare key', 'canary_garden_zone'], p.audit)).toEqual([])
  })
})
