/**
 * Frigate's identification results (face names, sub labels, plates, generated descriptions, thumbnails) and the
 * names people give their devices (Tasmota `FriendlyName`, `DeviceName`, `Hostname`; scale `nickname`).
 * text_drop's default keys: in the SDK because the core's free-string check (policy/string-check.ts) relies on
 * them as well, and the core does not import plug-ins.
 */
export const TEXT_DROP_DEFAULT_KEYS: readonly string[] = [
  'sub_label',
  'sub_labels',
  'name',
  'recognized_license_plate',
  'recognized_license_plate_score',
  'plate',
  'plate_box',
  'description',
  'thumb_path',
  'thumbnail',
  'FriendlyName',
  'Hostname',
  'LogHost',
  'OtaUrl',
  'DeviceName',
  'nickname',
]
