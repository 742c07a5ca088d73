import { statSync } from 'node:fs'
import { resolve } from 'node:path'
import { builtinPlugins } from '../builtins.ts'
import { AUDIT_FILE } from '../audit/chain.ts'
import { type VerifyResult, verifyAuditLog } from '../audit/verify.ts'
import { overridesFromEnv, resolveConfig } from '../config/config.ts'
import { VeilError } from '../errors.ts'
import { parse } from './args.ts'

const USAGE = 'Usage: veil audit verify [DIR] [--data-dir DIR] [--config FILE]\n'

/**
 * `veil audit verify [DIR]`: walks the audit files of DIR (the configured data directory by default) oldest first
 * and checks the hash chain. Exit 0 with a summary when it is whole, 1 naming the first line changed, removed or
 * inserted, 2 for bad usage or a directory that cannot be read.
 */
export async function audit(args: readonly string[]): Promise<number> {
  const [sub, ...rest] = args
  const { values, positionals } = parse(
    rest,
    { config: { type: 'string' }, 'data-dir': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    true,
  )
  if (values.help || sub === undefined) {
    process.stdout.write(USAGE)
    return sub === undefined ? 2 : 0
  }
  if (sub !== 'verify') throw new VeilError('VEIL_ERR_USAGE', `audit: unknown command ${sub}; expected verify`)
  if (positionals.length > 1) throw new VeilError('VEIL_ERR_USAGE', 'audit verify: expected at most one DIR')
  const dir =
    positionals[0] === undefined
      ? resolveConfig(
          builtinPlugins,
          { config: values.config, dataDir: values['data-dir'] },
          overridesFromEnv(process.env),
        ).dataDir
      : resolve(positionals[0])
  let result: VerifyResult
  try {
    if (!statSync(dir).isDirectory()) throw new Error('not a directory')
    result = verifyAuditLog(dir)
  } catch (err) {
    throw new VeilError('VEIL_ERR_USAGE', `audit verify: ${dir}: ${(err as Error).message}`)
  }
  if (result.files.length === 0)
    throw new VeilError('VEIL_ERR_USAGE', `audit verify: ${dir}: no ${AUDIT_FILE} or rotated audit files`)
  process.stdout.write(report(dir, result))
  return result.problem === undefined ? 0 : 1
}

function report(dir: string, r: VerifyResult): string {
  const out: string[] = []
  if (r.problem !== undefined) {
    out.push(`audit log NOT whole (${r.problem.kind}): ${r.problem.message}`)
    out.push(`  ${r.lines} line${r.lines === 1 ? '' : 's'} before it verified, in ${dir}`)
  } else {
    out.push(
      `audit log whole: ${r.files.length} file${r.files.length === 1 ? '' : 's'} (${r.files[0]} to ${r.files.at(-1)}), ${r.lines} line${r.lines === 1 ? '' : 's'} in ${dir}`,
    )
    if (r.head !== undefined) out.push(`  head: ${r.head.file}:${r.head.line} seq ${r.head.seq} sha256 ${r.head.hash}`)
  }
  if (r.retention !== undefined)
    out.push(
      `  starts after files deleted by retention (${r.retention.deleted.join(', ')}; recorded at ${r.retention.file}:${r.retention.line})`,
    )
  if (r.legacy > 0) out.push(`  ${r.legacy} line${r.legacy === 1 ? '' : 's'} written before the chain began`)
  for (const t of r.torn) out.push(`  ${t.file}:${t.line}: a line cut short by a crash (not tampering)`)
  return `${out.join('\n')}\n`
}
