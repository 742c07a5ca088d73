/**
 * Test certificates, generated with openssl into a temporary directory at test time (no key is ever committed):
 * a CA, a server certificate for 127.0.0.1 / localhost, client certificates with a given CN, and a second CA that
 * signs nothing the gateway trusts.
 */
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { tempDir } from './gateway.ts'

export interface TestPki {
  dir: string
  ca: string
  serverCert: string
  serverKey: string
  /** A CA the gateway does not trust, and a server certificate it signed. */
  otherCa: string
  otherServerCert: string
  otherServerKey: string
  client(cn: string, options?: { signedBy?: 'ca' | 'other' }): { cert: string; key: string }
  remove(): void
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] })
}

function makeCa(dir: string, name: string): void {
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.crt`,
    ],
    dir,
  )
}

function sign(dir: string, ca: string, name: string, subject: string, ext: string): void {
  openssl(
    [
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-subj',
      subject,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
    ],
    dir,
  )
  openssl(
    [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${ca}.crt`,
      '-CAkey',
      `${ca}.key`,
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      ext,
      '-out',
      `${name}.crt`,
    ],
    dir,
  )
}

export function createPki(): TestPki {
  const tmp = tempDir('veil-pki-')
  const dir = tmp.path
  const serverExt = join(dir, 'server.ext')
  const clientExt = join(dir, 'client.ext')
  execFileSync('sh', [
    '-c',
    `printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth\\n' > ${serverExt}; printf 'extendedKeyUsage=clientAuth\\n' > ${clientExt}`,
  ])
  makeCa(dir, 'ca')
  makeCa(dir, 'other')
  sign(dir, 'ca', 'server', '/CN=localhost', serverExt)
  sign(dir, 'other', 'otherserver', '/CN=localhost', serverExt)
  let n = 0
  return {
    dir,
    ca: join(dir, 'ca.crt'),
    serverCert: join(dir, 'server.crt'),
    serverKey: join(dir, 'server.key'),
    otherCa: join(dir, 'other.crt'),
    otherServerCert: join(dir, 'otherserver.crt'),
    otherServerKey: join(dir, 'otherserver.key'),
    client(cn, options = {}) {
      const name = `client${n++}`
      sign(dir, options.signedBy === 'other' ? 'other' : 'ca', name, `/CN=${cn}`, clientExt)
      return { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) }
    },
    remove: tmp.remove,
  }
}
