import { describe, expect, it } from 'vitest'
import { builtinProfiles } from '../../../filters/profiles/index.ts'
import { Classifier } from './classifier.ts'

describe('classifier', () => {
  const classifier = new Classifier(builtinProfiles)
  const cases: [string, string, string | undefined][] = [
    ['tele/tasmota_0329F7/SENSOR', 'tasmota/sensor', 'tasmota_0329F7'],
    ['tele/tasmota_0329F7/STATE', 'tasmota/state', 'tasmota_0329F7'],
    ['tele/tasmota_0329F7/LWT', 'tasmota/lwt', 'tasmota_0329F7'],
    ['stat/tasmota_0329F7/POWER1', 'tasmota/power', 'tasmota_0329F7'],
    ['frigate/events', 'frigate/events', undefined],
    ['frigate/front_door/person/snapshot', 'frigate/snapshot', 'front_door'],
    ['valetudo/Robo/MapData/map-data', 'valetudo/map', 'Robo'],
    ['valetudo/Robo/WifiConfigurationCapability/ssid', 'valetudo/wifi', 'Robo'],
    ['miscale/Alice/weight', 'miscale/weight', 'Alice'],
    ['owntracks/alice/phone', 'owntracks/location', 'alice/phone'],
    ['owntracks/alice/phone/event', 'owntracks/transition', 'alice/phone'],
    ['devices/gps_tracker/t-1/location', 'canonical/location', 't-1'],
  ]
  for (const [topic, key, id] of cases) {
    it(`maps ${topic} to ${key}`, () => {
      const match = classifier.classify(topic)
      expect(match?.stream.key).toBe(key)
      expect(match?.deviceId).toBe(id)
    })
  }

  it('knows no topic it was not told about', () => {
    for (const topic of ['', 'tele', 'tele/x', 'tele//SENSOR', 'tele/x/SENSOR/extra', 'owntracks/alice', 'devices/toaster/x/energy', 'veil/svc/x', '#']) {
      expect(classifier.classify(topic)).toBeUndefined()
    }
  })
})
