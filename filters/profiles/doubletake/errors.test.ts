import { afterEach, describe, expect, it } from 'vitest'
import { leaks, shippedPipeline, type ProfilePipeline } from '../testing.ts'

const T0 = Date.UTC(2026, 2, 1, 7)

describe('double-take/errors and double-take/available', () => {
  let p: ProfilePipeline
  afterEach(() => p.close())

  it('keeps every error home, whatever it holds, and tells svc whether Double Take is up', async () => {
    p = shippedPipeline()
    const errors = [
      '',
      JSON.stringify({
        message: 'compreface process error: connect ECONNREFUSED 10.208.100.100:8000',
        stack: 'Error: connect ECONNREFUSED 10.208.100.100:8000\n    at TCPConnectWrap.afterConnect',
      }),
      JSON.stringify({
        message:
          'frigate url error: canary-side-gate /api/events/1623906078.684285-5l9hw6/snapshot.jpg 404 canaryoscar',
      }),
      'not even JSON: canary-patio',
      Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00]).toString('latin1'),
    ]
    for (const e of errors)
      expect((await p.send(T0, 'double-take/errors', e)).dropped).toEqual({ stage: 'filter', reason: 'no_policy' })
    await p.send(T0, 'double-take/available', 'online')
    await p.send(T0 + 60_000, 'double-take/available', 'offline')
    expect((await p.send(T0, 'double-take/available', 'rebooting')).dropped?.reason).toBe('invalid')
    expect(p.forwarded.map((f) => [f.domain, f.stream, f.data])).toEqual([
      ['svc', 'available', 'online'],
      ['svc', 'available', 'offline'],
    ])
    expect(
      leaks(
        p.forwarded,
        ['10.208.100.100', 'canary-side-gate', 'canaryoscar', 'canary-patio', '5l9hw6', 'double-take'],
        p.audit,
      ),
    ).toEqual([])
  })
})
