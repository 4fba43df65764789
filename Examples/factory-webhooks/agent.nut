// agent.nut: factory firmware agent code for Electric Imp's Connected Factory, posting
// each device's factory test result to a Hearth server instead of Firebase.
//
// For reading, not running: it is not run by `make test` and needs an impCentral account,
// a BlinkUp fixture and devices to run for real. run.py posts the same records, so you can
// try the server side without hardware.
//
// How it fits together (see README.md):
//
//   BlinkUp fixture (factory imp)  --server.factoryblinkup()-->  device under test (DUT)
//   DUT device code                --agent.send("testresult")--> DUT agent (this file)
//   DUT agent                      --POST /testresult.json-->    Hearth
//   impCloud, after server.bless() --Blessing webhook-->         Hearth /blessing.json
//   impCloud, end-user BlinkUp     --BlinkUp webhook-->          Hearth /blinkup.json
//
// The webhooks are set up in impCentral (the device group's settings), not in code.
//
// The matching device code, in outline:
//
//   if (imp.configparams.factory_imp == imp.getmacaddress()) {
//       // The BlinkUp fixture: on each button press, configure the DUT in front of it.
//       server.factoryblinkup(FACTORY_SSID, FACTORY_PASSWORD, hardware.pin9, BLINKUP_FAST);
//   } else {
//       // A device under test: run the tests, report, and ask to be blessed if they passed.
//       local tests = runTests();   // { button = true, led = true, rssi = -55, vbat = 3.31 }
//       local passed = tests.button && tests.led && tests.rssi >= -75 && tests.vbat >= 3.0;
//       agent.send("testresult", { mac = imp.getmacaddress(), success = passed,
//                                  msg = describe(tests), tests = tests });
//       if (passed) server.bless(true, function(blessed) {
//           if (blessed) imp.clearconfiguration();
//       });
//   }

// ---- Configuration --------------------------------------------------------------------

// Where Hearth is. impCentral's agents reach it over the internet, so use https:// and put
// Hearth behind a TLS-terminating proxy (Hearth itself speaks plain HTTP).
const HEARTH_URL = "https://hearth.factory.example.com";

// The namespace (database) to write to: "" for the server's default one, or a name such as
// "line-a" (sent as ?ns=line-a).
const HEARTH_NAMESPACE = "";

// The webhook token of the stronger setup (README.md, "A token in the webhook URLs"):
// minted with `hearth token --uid webhooks ...` and sent as ?auth=<token>, for a server under
// database.rules.token.json. "" posts anonymously (database.rules.json). Agent code runs in
// Electric Imp's cloud, not on the device, so the token never leaves impCloud.
const HEARTH_TOKEN = "";

// How often to try a post that failed for a reason that may pass (no connection, 5xx).
const MAX_ATTEMPTS = 5;

// ---- Posting to Hearth -------------------------------------------------------------------

// The REST URL of a list, e.g. hearthURL("/testresult") ->
// "https://hearth.factory.example.com/testresult.json?print=silent".
// print=silent makes Hearth answer 204 with no body: the agent only needs the status.
function hearthURL(path) {
    local url = HEARTH_URL + path + ".json?print=silent";
    if (HEARTH_NAMESPACE != "") url += "&ns=" + HEARTH_NAMESPACE;
    if (HEARTH_TOKEN != "") url += "&auth=" + HEARTH_TOKEN;
    return url;
}

// POSTs one record under a new push id in `path`. With HEARTH_TOKEN empty no credential is
// sent: the rules in database.rules.json let anonymous callers append records of this shape
// (and only credentialed callers read).
function postToHearth(path, record, attempt = 1) {
    local headers = { "Content-Type": "application/json" };
    local body = http.jsonencode(record);
    http.post(hearthURL(path), headers, body).sendasync(function(response) {
        local status = response.statuscode;
        if (status == 200 || status == 204) {
            server.log(format("posted %s for device %s", path, record.device_id));
            return;
        }
        // Codes below 100 are the imp's own (no connection, timeout); 5xx and 429 are the
        // server's or the proxy's. Anything else (400 bad data, 401 refused by the rules,
        // 413 too large) will not get better by trying again.
        local transient = status < 100 || status == 429 || status >= 500;
        if (transient && attempt < MAX_ATTEMPTS) {
            // Back off 2, 4, 8, 16 s. A POST that reached the server but whose answer was
            // lost is posted twice; the records carry the device id, so duplicates are easy
            // to spot in the export.
            local delay = 1 << attempt;
            server.log(format("post to %s failed (%d), retrying in %d s", path, status, delay));
            imp.wakeup(delay, function() {
                postToHearth(path, record, attempt + 1);
            });
        } else {
            server.error(format("giving up on %s for device %s: %d %s",
                                path, record.device_id, status, response.body));
        }
    });
}

// ---- Factory roles -------------------------------------------------------------------------

// A factory imp's agent runs in the factory firmware (imp.configparams.factoryfirmware).
// The agent of a device under test also knows its fixture's agent URL
// (imp.configparams.factory_fixture_url); the fixture's own agent does not.
function isFactoryFirmware() {
    return ("factoryfirmware" in imp.configparams) && imp.configparams.factoryfirmware;
}

function isDeviceUnderTest() {
    return isFactoryFirmware() && ("factory_fixture_url" in imp.configparams);
}

// The agent of a device under test: store the result in Hearth, and tell the fixture so it
// can show pass/fail to the operator.
function startDeviceUnderTestAgent() {
    device.on("testresult", function(result) {
        local record = {
            // The agent knows its device's id; the device supplies its MAC address.
            "device_id": imp.configparams.deviceid,
            "mac": result.mac,
            "type": "testresult",
            "msg": result.msg,
            "success": result.success,
            "tests": result.tests,
            // Hearth (like Firebase) replaces this with its own time, in ms since 1970.
            "timestamp": { ".sv": "timestamp" }
        };
        postToHearth("/testresult", record);

        local fixture = imp.configparams.factory_fixture_url;
        http.post(fixture, { "Content-Type": "application/json" }, http.jsonencode(record))
            .sendasync(function(response) {
                if (response.statuscode != 200) {
                    server.error("could not reach the fixture's agent: " + response.statuscode);
                }
            });
    });
}

// The fixture's agent: pass each DUT's result on to the fixture, for its display.
function startFixtureAgent() {
    http.onrequest(function(request, response) {
        try {
            if (request.method == "POST") {
                device.send("dutresult", http.jsondecode(request.body));
                response.send(200, "OK");
            } else {
                response.send(405, "POST only");
            }
        } catch (error) {
            response.send(400, "Bad request: " + error);
        }
    });
}

// ---- Start ---------------------------------------------------------------------------------

if (!isFactoryFirmware()) {
    server.log("not running as factory firmware; nothing to do");
} else if (isDeviceUnderTest()) {
    startDeviceUnderTestAgent();
} else {
    startFixtureAgent();
}
