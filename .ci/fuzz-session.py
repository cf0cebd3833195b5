"""Signs in one employee of the demo company the way a browser does (password,
then authenticator enrolment with a code computed here from the shown key,
RFC 6238) and prints the session cookie, for the API fuzzer's browser-session
routes. Usage: python3 .ci/fuzz-session.py BASE_URL EMAIL PASSWORD"""
import base64, hashlib, hmac, http.cookiejar, json, struct, sys, time, urllib.parse, urllib.request

base, email, password = sys.argv[1:4]
jar = http.cookiejar.CookieJar()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)


def call(name, form):
    data = urllib.parse.urlencode(form).encode()
    req = urllib.request.Request(f"{base}/api/{name}", data=data, headers={"Accept": "application/json"})
    try:
        with opener.open(req) as r:
            return r.read()
    except urllib.error.HTTPError as e:
        if e.code in (302, 303):
            return b""
        raise SystemExit(f"{name}: HTTP {e.code}: {e.read()[:200]!r}")


def totp(key_b32, at):
    key = base64.b32decode(key_b32.replace(" ", "").upper())
    mac = hmac.new(key, struct.pack(">Q", int(at // 30)), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    return "%06d" % ((struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000)


call("sign_in", {"email": email, "password": password})
enrolment = json.loads(call("enrolment", {}))
call("confirm_enrolment", {"code": totp(enrolment["key"], time.time())})
cookie = next(c for c in jar if c.name.endswith("gatehouse"))
print(f"{cookie.name}={cookie.value}")
