// DPoP proofs made by panva's `dpop` and requests sent by `oauth4webapi`, against an
// authguard server. Reads one JSON object on stdin:
//   {base, path, token, jwk (the private ES256 or Ed25519 JWK the token is bound to),
//    nonce: bool}
// and prints one JSON object: the status, reason and challenges of each scenario.
import * as dpop from 'dpop'
import * as oauth from 'oauth4webapi'

const input = JSON.parse(await new Promise((resolve) => {
  let text = ''
  process.stdin.on('data', (chunk) => { text += chunk })
  process.stdin.on('end', () => resolve(text))
}))
const { base, path, token } = input
const url = new URL(path, base)
const htu = url.href

async function importPair (jwk) {
  const { d, ...pub } = jwk
  const algorithm = jwk.kty === 'OKP' ? { name: 'Ed25519' } : { name: 'ECDSA', namedCurve: 'P-256' }
  return {
    privateKey: await crypto.subtle.importKey('jwk', jwk, algorithm, false, ['sign']),
    publicKey: await crypto.subtle.importKey('jwk', pub, algorithm, true, ['verify'])
  }
}

async function send (headers, method = 'GET') {
  const response = await fetch(url, { method, headers })
  const text = await response.text()
  let body = null
  try { body = JSON.parse(text) } catch {}
  return {
    status: response.status,
    reason: body?.reason ?? null,
    dpop_check: body?.dpop_check ?? null,
    body,
    www_authenticate: response.headers.get('www-authenticate'),
    dpop_nonce: response.headers.get('dpop-nonce')
  }
}

const pair = await importPair(input.jwk)
const other = await dpop.generateKeyPair('ES256')
const out = {}
const authz = (t = token) => ({ authorization: `DPoP ${t}` })

// A nonce first, when the server asks for one (what any DPoP client does on use_dpop_nonce).
let nonce
if (input.nonce) {
  const first = await send({ ...authz(), dpop: await dpop.generateProof(pair, htu, 'GET', undefined, token) })
  out.nonce_asked = first
  nonce = first.dpop_nonce ?? undefined
}

const valid = await dpop.generateProof(pair, htu, 'GET', nonce, token)
out.valid = await send({ ...authz(), dpop: valid })
out.replayed = await send({ ...authz(), dpop: valid })
out.wrong_htm = await send({ ...authz(), dpop: await dpop.generateProof(pair, htu, 'POST', nonce, token) })
out.wrong_htu = await send({ ...authz(), dpop: await dpop.generateProof(pair, new URL('/elsewhere', base).href, 'GET', nonce, token) })
out.wrong_ath = await send({ ...authz(), dpop: await dpop.generateProof(pair, htu, 'GET', nonce, token + 'x') })
out.other_key = await send({ ...authz(), dpop: await dpop.generateProof(other, htu, 'GET', nonce, token) })
out.no_proof = await send(authz())
out.as_bearer = await send({ authorization: `Bearer ${token}` })

// oauth4webapi: its DPoP handle signs each proof and remembers the server's nonce; a
// use_dpop_nonce answer is retried once, as its documentation says.
const handle = oauth.DPoP({}, pair)
const options = { DPoP: handle, [oauth.allowInsecureRequests]: true }
const attempts = []
for (let i = 0; i < 2; i++) {
  try {
    const response = await oauth.protectedResourceRequest(token, 'GET', url, new Headers(), null, options)
    attempts.push({ status: response.status, body: await response.json() })
    break
  } catch (err) {
    attempts.push({
      error: err?.constructor?.name ?? String(err),
      nonce_error: oauth.isDPoPNonceError(err),
      status: err?.response?.status ?? null,
      challenges: Array.isArray(err?.cause) ? err.cause : null
    })
    if (!oauth.isDPoPNonceError(err)) break
  }
}
out.oauth4webapi = attempts

// oauth4webapi's parse of a refusal's challenges (the proof is signed by another key).
try {
  await oauth.protectedResourceRequest(token, 'GET', url, new Headers(), null,
    { DPoP: oauth.DPoP({}, other), [oauth.allowInsecureRequests]: true })
  out.parsed = null
} catch (err) {
  out.parsed = { error: err?.constructor?.name, challenges: Array.isArray(err?.cause) ? err.cause : null }
}

process.stdout.write(JSON.stringify(out))
