import { describe, expect, it } from 'vitest'
import { builtinProfiles } from '../../../filters/profiles/index.ts'
import { builtinPipeline } from '../../../test/helpers/pipeline.ts'
import { tempDir } from '../../../test/helpers/gateway.ts'
import { Classifier } from '../streams/classifier.ts'

describe('createPipeline', () => {
  it('builds on a classifier it is given instead of compiling the profiles again', () => {
    const classifier = new Classifier(builtinProfiles)
    expect(builtinPipeline({ streams: classifier }).classifier).toBe(classifier)
  })

  it('loads the policies once, into the holder a reload replaces, with the options a reload needs', async () => {
    const { pipeline, policies, policyOptions, keyring } = builtinPipeline()
    expect(pipeline.policyVersion).toBe(policies.current.version)
    expect(policyOptions.keyring).toBe(keyring)
    const known = await pipeline.process(
      'tele/tasmota_0329F7/SENSOR',
      Buffer.from('{"ENERGY":{"Total":1.5,"Power":3}}'),
    )
    expect(known).toMatchObject({ category: 'smart_plug', stream: 'sensor', dropped: undefined })
    expect((await pipeline.process('nobody/knows', Buffer.from('{}'))).dropped).toEqual({
      stage: 'classify',
      reason: 'unknown_topic',
    })
  })

  it('stops at a policy problem, naming the directory', () => {
    const empty = tempDir()
    try {
      expect(() => builtinPipeline({ policies: empty.path })).toThrow(`${empty.path}: no policy files`)
    } finally {
      empty.remove()
    }
  })
})
