// WebAuthn in the browser for the gateway's pages (docs/mfa.md, "WebAuthn"):
// the server's JSON options are turned into navigator.credentials arguments
// (base64url → bytes) and the credential back into JSON (bytes → base64url),
// by hand, so it works without the WebAuthn L3 JSON helpers.
//
// Every call takes `headers`: the page's X-CSRF-Token (cookie sessions) or an
// Authorization header. Each resolves to {ok, status, body}.
(function () {
  "use strict";

  function fromB64url(text) {
    const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const pad = b64.length % 4 ? "=".repeat(4 - (b64.length % 4)) : "";
    const raw = atob(b64 + pad);
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes.buffer;
  }

  function toB64url(buffer) {
    const bytes = new Uint8Array(buffer);
    let raw = "";
    for (let i = 0; i < bytes.length; i++) raw += String.fromCharCode(bytes[i]);
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  async function post(path, body, headers) {
    const response = await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: Object.assign({ "Content-Type": "application/json" }, headers || {}),
      body: JSON.stringify(body || {}),
    });
    let parsed = null;
    try {
      parsed = await response.json();
    } catch (e) {
      parsed = null;
    }
    return { ok: response.ok, status: response.status, body: parsed, reason: response.headers.get("x-error-reason") };
  }

  function creationOptions(publicKey) {
    const options = Object.assign({}, publicKey);
    options.challenge = fromB64url(publicKey.challenge);
    options.user = Object.assign({}, publicKey.user, { id: fromB64url(publicKey.user.id) });
    options.excludeCredentials = (publicKey.excludeCredentials || []).map(function (c) {
      return Object.assign({}, c, { id: fromB64url(c.id) });
    });
    return options;
  }

  function requestOptions(publicKey) {
    const options = Object.assign({}, publicKey);
    options.challenge = fromB64url(publicKey.challenge);
    options.allowCredentials = (publicKey.allowCredentials || []).map(function (c) {
      return Object.assign({}, c, { id: fromB64url(c.id) });
    });
    return options;
  }

  // Enrol a security key or passkey: {label, cli_compatible, headers}.
  async function enroll(args) {
    const started = await post("/api/v1/auth/mfa/enroll/webauthn/start", {}, args.headers);
    if (!started.ok) return started;
    let credential;
    try {
      credential = await navigator.credentials.create({ publicKey: creationOptions(started.body.options.publicKey) });
    } catch (e) {
      return { ok: false, status: 0, body: { error: "the browser or key refused: " + e.name + ": " + e.message } };
    }
    const body = {
      ceremony_id: started.body.ceremony_id,
      label: args.label,
      credential: {
        id: credential.id,
        rawId: toB64url(credential.rawId),
        type: credential.type,
        extensions: credential.getClientExtensionResults(),
        response: {
          attestationObject: toB64url(credential.response.attestationObject),
          clientDataJSON: toB64url(credential.response.clientDataJSON),
        },
      },
    };
    if (args.cli_compatible !== undefined) body.cli_compatible = args.cli_compatible;
    return post("/api/v1/auth/mfa/enroll/webauthn/confirm", body, args.headers);
  }

  // Verify with a key: {purpose, headers, startPath?, verifyPath?, extra?,
  // userVerification?}. `userVerification` overrides what the server asked,
  // as a tampered client would (tests use it; the server still refuses).
  async function verify(args) {
    const startPath = args.startPath || "/api/v1/auth/mfa/webauthn/assertion/start";
    const verifyPath = args.verifyPath || "/api/v1/auth/mfa/webauthn/assertion/verify";
    const startBody = Object.assign({}, args.extra || {});
    if (args.purpose) startBody.purpose = args.purpose;
    const started = await post(startPath, startBody, args.headers);
    if (!started.ok) return started;
    const options = requestOptions(started.body.options.publicKey);
    if (args.userVerification) options.userVerification = args.userVerification;
    let assertion;
    try {
      assertion = await navigator.credentials.get({ publicKey: options });
    } catch (e) {
      return { ok: false, status: 0, body: { error: "the browser or key refused: " + e.name + ": " + e.message } };
    }
    const r = assertion.response;
    const body = Object.assign({}, args.extra || {}, {
      ceremony_id: started.body.ceremony_id,
      credential: {
        id: assertion.id,
        rawId: toB64url(assertion.rawId),
        type: assertion.type,
        extensions: assertion.getClientExtensionResults(),
        response: {
          authenticatorData: toB64url(r.authenticatorData),
          clientDataJSON: toB64url(r.clientDataJSON),
          signature: toB64url(r.signature),
          userHandle: r.userHandle ? toB64url(r.userHandle) : null,
        },
      },
    });
    return post(verifyPath, body, args.headers);
  }

  window.rgwWebauthn = { enroll: enroll, verify: verify, post: post };
})();
