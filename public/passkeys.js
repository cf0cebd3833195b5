// Passkeys in the browser: the WebAuthn calls Gatehouse's pages make.
// A button with data-passkey="register | sign-in | step-up" starts a
// ceremony: the server's options (JSON, binary fields in base64url) go to
// navigator.credentials, and the authenticator's answer goes back to the
// server, which checks everything. Errors show in the element named by
// the button's data-passkey-error (role="alert").
(() => {
  "use strict";

  const fromB64 = (s) => {
    const b = atob(s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4));
    return Uint8Array.from(b, (c) => c.charCodeAt(0)).buffer;
  };
  const toB64 = (buf) =>
    btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

  // A server function: form-encoded in, JSON out; an error's message.
  async function call(endpoint, fields) {
    const r = await fetch("/api/" + endpoint, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
      body: new URLSearchParams(fields || {}),
      credentials: "same-origin",
    });
    const text = await r.text();
    let body = text;
    try {
      body = JSON.parse(text);
    } catch (_) {}
    if (!r.ok) {
      throw new Error(message(body));
    }
    // A server function that redirects names the page in Location.
    return { body, redirect: r.headers.get("location") || (r.redirected ? new URL(r.url).pathname : null) };
  }
  function message(body) {
    if (typeof body === "string") return body || "Something went wrong.";
    if (body && typeof body === "object") {
      if (typeof body.error === "string") return body.error;
      const v = Object.values(body)[0];
      if (typeof v === "string") return v;
      if (v && typeof v.message === "string") return v.message;
    }
    return "Something went wrong.";
  }

  function creationOptions(json) {
    const pk = JSON.parse(json).publicKey;
    pk.challenge = fromB64(pk.challenge);
    pk.user.id = fromB64(pk.user.id);
    (pk.excludeCredentials || []).forEach((c) => (c.id = fromB64(c.id)));
    return { publicKey: pk };
  }
  function requestOptions(json) {
    const o = JSON.parse(json);
    const pk = o.publicKey;
    pk.challenge = fromB64(pk.challenge);
    (pk.allowCredentials || []).forEach((c) => (c.id = fromB64(c.id)));
    return { publicKey: pk };
  }
  // The answer as JSON, binary fields in base64url: the attestation
  // (registration) or the signature (use).
  function answer(cred) {
    const r = cred.response;
    const response = { clientDataJSON: toB64(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toB64(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : undefined;
    } else {
      response.authenticatorData = toB64(r.authenticatorData);
      response.signature = toB64(r.signature);
      response.userHandle = r.userHandle ? toB64(r.userHandle) : null;
    }
    return JSON.stringify({
      id: cred.id,
      rawId: toB64(cred.rawId),
      type: cred.type,
      response,
      extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
    });
  }

  // The browser's own errors, in words.
  function browserError(e) {
    if (e && e.name === "NotAllowedError") return "The passkey request was cancelled or timed out.";
    if (e && e.name === "InvalidStateError") return "This passkey is already registered.";
    if (e && e.name === "SecurityError") return "Passkeys do not work on this address: use Gatehouse's own URL.";
    return e && e.message ? e.message : "Something went wrong.";
  }

  async function register(btn) {
    const form = btn.closest("form");
    const nameField = form && form.querySelector("[name=passkey_name]");
    const name = nameField ? nameField.value : "";
    if (!name.trim()) throw new Error('Name the passkey (1 to 60 characters), e.g. "Work laptop".');
    const { body: options } = await call("passkey_registration_options");
    let cred;
    try {
      cred = await navigator.credentials.create(creationOptions(options));
    } catch (e) {
      throw new Error(browserError(e));
    }
    const r = await call("register_passkey", { name, credential: answer(cred) });
    location.assign(r.redirect || location.pathname);
  }

  async function use(btn) {
    const { body: options } = await call("passkey_authentication_options");
    let cred;
    try {
      cred = await navigator.credentials.get(requestOptions(options));
    } catch (e) {
      throw new Error(browserError(e));
    }
    if (btn.dataset.passkey === "sign-in") {
      const r = await call("passkey_sign_in", { credential: answer(cred) });
      location.assign(typeof r.body === "string" && r.body.startsWith("/") ? r.body : "/");
      return;
    }
    // Step-up: the session's second factor is now fresh; the form the
    // button sits in is sent (its code field may stay empty).
    await call("passkey_step_up", { purpose: btn.dataset.purpose || "step-up", credential: answer(cred) });
    const form = btn.closest("form");
    const submitter = form && btn.dataset.passkeySubmit && form.querySelector(btn.dataset.passkeySubmit);
    if (form) form.requestSubmit(submitter || undefined);
  }

  document.addEventListener("click", async (ev) => {
    const btn = ev.target.closest && ev.target.closest("[data-passkey]");
    if (!btn) return;
    ev.preventDefault();
    const out = btn.dataset.passkeyError && document.getElementById(btn.dataset.passkeyError);
    if (out) out.textContent = "";
    if (!window.PublicKeyCredential) {
      if (out) out.textContent = "This browser does not support passkeys.";
      return;
    }
    btn.disabled = true;
    try {
      await (btn.dataset.passkey === "register" ? register(btn) : use(btn));
    } catch (e) {
      if (out) out.textContent = e.message;
    } finally {
      btn.disabled = false;
    }
  });
})();
