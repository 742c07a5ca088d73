import { parseArgs, type ParseArgsConfig } from 'node:util'

/** Strict option parsing shared by every command; its own module so the commands need not import main.ts back. */
export function parse<O extends ParseArgsConfig['options']>(
  args: readonly string[],
  options: O,
  allowPositionals = false,
) {
  return parseArgs({ args: [...args], options, strict: true, allowPositionals })
}
