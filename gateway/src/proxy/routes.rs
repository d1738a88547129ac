//! The whole Convox rack API as data: one ordered table ([`ROUTES`]) giving,
//! for every route the rack serves (convox-api.md §4.1–4.7), its permission,
//! how its body and reply travel, and — for the routes the gateway refuses by
//! default — why. Anything not in the table is 404 and never forwarded
//! (decision 6).
//!
//! Matching follows the rack's router (gorilla/mux, via `stdapi`): routes are
//! tried in order, `{x}` is one non-empty segment, `{x...}` is the rest of the
//! path (one or more segments, rejoined with `/`), `{id}.tgz` is a segment
//! with a literal suffix, a websocket route matches only a `GET` carrying an
//! upgrade, and `*` as a method means any method.
//!
//! Permissions use the rbac module's `convox:<resource>:<action>` names
//! (behaviour §c). The form matters for two routes ([`permission_for`]):
//! `POST /apps/{app}/releases` with an `env` field is an env change, and
//! `PUT /system` splits version updates from parameter and scaling changes.
//!
//! **"Form"** everywhere in this module and in `policy`/`redact` means what
//! Go's `r.Form` holds on the rack: the url-encoded body fields (POST/PUT/PATCH
//! only) followed by the URL query fields — the rack's option parser reads
//! `param` options from both, first value wins. Build it with [`request_form`];
//! otherwise `POST /apps/x/releases?env=...` would change env unseen.

use http::{HeaderMap, Method};

use super::path::NormalizedPath;

/// How a route's request and reply travel; tells the engine how to proxy it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    /// Small request (form or nothing), JSON or `ok` reply.
    Json,
    /// Raw request body streamed to the rack (objects, archives, dumps).
    Upload,
    /// Raw reply streamed from the rack (exports, files, object fetch).
    Download,
    /// Websocket: logs, exec, consoles, tunnels.
    WebSocket,
    /// Reverse proxy in both directions (`/v2`, `/custom/http/proxy`).
    Proxy,
    /// The CLI's throwaway `GET /machines` / `GET /racks` sent before each
    /// websocket "to trigger session authentication"; a real rack answers 404
    /// and the CLI ignores the answer. The gateway authenticates it like any
    /// request, then answers 404 itself: never forwarded, never a deny alarm.
    Probe,
}

/// What the request body is, for the engine and the form readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// No body is read by the rack (GET, HEAD, OPTIONS, DELETE).
    None,
    /// A url-encoded form (or nothing): buffer it and read it.
    Form,
    /// A url-encoded form (v3) or a multipart upload (old racks): buffer and
    /// read the form; stream the multipart.
    FormOrMultipart,
    /// Raw bytes, streamed, never read.
    Raw,
    /// Raw `K=V` lines (legacy `POST /apps/{app}/environment`): buffer it and
    /// read it as the `env` field.
    EnvLines,
    /// Anything, streamed both ways (proxies).
    Passthrough,
}

/// A setting that lifts a route's default refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicySwitch {
    /// `ALLOW_RACK_UPDATE`: admins may `PUT /system`.
    AllowRackUpdate,
}

/// One rack route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// `GET`, `POST`, ...; `*` matches any method (the rack's `ANY`).
    pub method: &'static str,
    /// The path, as in convox-api.md §4, e.g. `/apps/{app}/processes/{pid}/exec`.
    pub pattern: &'static str,
    /// The rack's handler (pkg/api/controllers.go); `…V2` for legacy v2 paths.
    pub handler: &'static str,
    /// The permission RBAC checks (before [`permission_for`] reads the form).
    pub permission: &'static str,
    pub kind: RouteKind,
    /// Matches only a `GET` with `Upgrade: websocket`; a plain GET does not.
    pub websocket: bool,
    /// The engine must buffer the (small) body — url-encoded form or env
    /// lines, up to [`FORM_BODY_LIMIT`] — so permission, policy and
    /// redaction can read it. See [`Route::body`] and [`body_fields`].
    pub inspect_form: bool,
    pub body: BodyFormat,
    /// Refused by default, with the reason (after RBAC allowed it).
    pub refused: Option<&'static str>,
    /// The setting that lifts `refused`, if any.
    pub opened_by: Option<PolicySwitch>,
    /// The reply carries secrets (env values, credentials, tokens, data):
    /// never log or record its body.
    pub reply_has_secrets: bool,
    /// A v2-rack path the current CLI still calls (convox-api.md §4.7).
    pub legacy: bool,
}

impl Route {
    const fn new(
        method: &'static str,
        pattern: &'static str,
        handler: &'static str,
        permission: &'static str,
        kind: RouteKind,
        body: BodyFormat,
    ) -> Route {
        Route {
            method,
            pattern,
            handler,
            permission,
            kind,
            websocket: matches!(kind, RouteKind::WebSocket),
            inspect_form: matches!(
                body,
                BodyFormat::Form | BodyFormat::FormOrMultipart | BodyFormat::EnvLines
            ),
            body,
            refused: None,
            opened_by: None,
            reply_has_secrets: false,
            legacy: false,
        }
    }

    const fn refused(self, reason: &'static str) -> Route {
        Route {
            refused: Some(reason),
            ..self
        }
    }

    const fn opened_by(self, switch: PolicySwitch) -> Route {
        Route {
            opened_by: Some(switch),
            ..self
        }
    }

    const fn secret_reply(self) -> Route {
        Route {
            reply_has_secrets: true,
            ..self
        }
    }

    const fn legacy(self) -> Route {
        Route {
            legacy: true,
            ..self
        }
    }

    const fn body(self, body: BodyFormat) -> Route {
        Route {
            body,
            inspect_form: matches!(
                body,
                BodyFormat::Form | BodyFormat::FormOrMultipart | BodyFormat::EnvLines
            ),
            ..self
        }
    }

    /// `METHOD pattern`, as recorded in events.
    pub fn name(&self) -> String {
        format!("{} {}", self.method, self.pattern)
    }
}

const fn get(pattern: &'static str, handler: &'static str, permission: &'static str) -> Route {
    bare("GET", pattern, handler, permission)
}

/// POST/PUT with a form body (or none).
const fn form(
    method: &'static str,
    pattern: &'static str,
    handler: &'static str,
    permission: &'static str,
) -> Route {
    Route::new(
        method,
        pattern,
        handler,
        permission,
        RouteKind::Json,
        BodyFormat::Form,
    )
}

/// DELETE, HEAD, OPTIONS: no body the rack reads.
const fn bare(
    method: &'static str,
    pattern: &'static str,
    handler: &'static str,
    permission: &'static str,
) -> Route {
    Route::new(
        method,
        pattern,
        handler,
        permission,
        RouteKind::Json,
        BodyFormat::None,
    )
}

const fn ws(pattern: &'static str, handler: &'static str, permission: &'static str) -> Route {
    Route::new(
        "GET",
        pattern,
        handler,
        permission,
        RouteKind::WebSocket,
        BodyFormat::None,
    )
}

const fn upload(
    method: &'static str,
    pattern: &'static str,
    handler: &'static str,
    permission: &'static str,
) -> Route {
    Route::new(
        method,
        pattern,
        handler,
        permission,
        RouteKind::Upload,
        BodyFormat::Raw,
    )
}

const fn download(pattern: &'static str, handler: &'static str, permission: &'static str) -> Route {
    Route::new(
        "GET",
        pattern,
        handler,
        permission,
        RouteKind::Download,
        BodyFormat::None,
    )
}

const fn proxy(
    method: &'static str,
    pattern: &'static str,
    handler: &'static str,
    permission: &'static str,
) -> Route {
    Route::new(
        method,
        pattern,
        handler,
        permission,
        RouteKind::Proxy,
        BodyFormat::Passthrough,
    )
}

const fn probe(pattern: &'static str, handler: &'static str) -> Route {
    Route::new(
        "GET",
        pattern,
        handler,
        "convox:rack:read",
        RouteKind::Probe,
        BodyFormat::None,
    )
}

// Why routes are refused (convox-api.md §7, behaviour decision 5, seed 004).
const RACK_UPDATE: &str = "rack updates, rack parameter changes and rack scaling (PUT /system) \
     are left to the infrastructure team; set ALLOW_RACK_UPDATE=true to let admins do them";
const JWT_MINT: &str = "minting rack JWTs would hand out rack credentials that bypass the gateway \
     and its audit log";
const JWT_ROTATE: &str = "rotating the rack's JWT signing key is a rack-level credential operation";
const KARPENTER: &str = "Karpenter node cleanup is a rack-level node operation";
const KEYROLL: &str = "rolling the instances' SSH key is a rack-level credential operation";
const NODE_SHELL: &str = "a shell on a rack node is root access to the cluster, outside any app";
const NODE_TERMINATE: &str = "terminating rack nodes is a rack-level operation";
const REGISTRY_LIST: &str = "the registry list carries the private registries' passwords";
const REGISTRY_CHANGE: &str = "private registry credentials are managed outside the gateway";
const CERT_UPLOAD: &str = "uploading certificates sends private keys through the gateway; \
     TLS certificates are managed outside it";
const CERT_CHANGE: &str = "TLS certificates are managed outside the gateway";
const IMAGE_PUSH: &str = "pushing images into an app's repository bypasses builds, releases and \
     their audit trail";
const TUNNEL: &str = "tunnels into the cluster network reach services the gateway cannot see or \
     audit";
const RACK_RESOURCE: &str = "rack-level resources (databases, caches) and their links are managed \
     outside the gateway";
const DB_CONSOLE: &str = "a database console gives unaudited read and write access to the data";
const DB_EXPORT: &str = "a full database dump would leave the rack through the gateway";
const DB_IMPORT: &str = "restoring a dump overwrites an app's database";

/// Every rack route, in the rack's matching order where it matters
/// (`{id}.tgz` before `{id}`; `GET`/`HEAD` `/v2` before its `*`).
pub static ROUTES: &[Route] = &[
    // Credential check used by `convox login` (any caller with rack access).
    get("/auth", "Auth", "convox:rack:read"),
    // The CLI's pre-websocket probes (convox-api.md §2.4).
    probe("/machines", "MachinesProbe"),
    probe("/racks", "RacksProbe"),
    // §4.1 Apps
    get("/apps", "AppList", "convox:app:list"),
    form("POST", "/apps", "AppCreate", "convox:app:create"),
    get("/apps/{app}", "AppGet", "convox:app:read"),
    form("PUT", "/apps/{app}", "AppUpdate", "convox:app:update"),
    bare("DELETE", "/apps/{app}", "AppDelete", "convox:app:delete"),
    form(
        "POST",
        "/apps/{app}/cancel",
        "AppCancel",
        "convox:app:update",
    ),
    // Diagnose includes pod log lines.
    get("/apps/{app}/diagnose", "AppDiagnose", "convox:log:read"),
    get(
        "/apps/{app}/manifest/services/{service}",
        "AppManifestService",
        "convox:app:read",
    ),
    get("/apps/{app}/metrics", "AppMetrics", "convox:app:read"),
    get(
        "/apps/{app}/metrics-by-service",
        "MetricsByService",
        "convox:app:read",
    ),
    get("/apps/{app}/cost", "AppCost", "convox:app:read"),
    get("/apps/{app}/budget", "AppBudgetGet", "convox:app:read"),
    // A budget's at-cap action can shut the app down: admin.
    form(
        "POST",
        "/apps/{app}/budget",
        "AppBudgetSet",
        "convox:app:manage",
    ),
    bare(
        "DELETE",
        "/apps/{app}/budget",
        "AppBudgetClear",
        "convox:app:manage",
    ),
    form(
        "POST",
        "/apps/{app}/budget/reset",
        "AppBudgetReset",
        "convox:app:manage",
    ),
    get(
        "/apps/{app}/budget/shutdown-state",
        "AppBudgetShutdownStateGet",
        "convox:app:read",
    ),
    form(
        "POST",
        "/apps/{app}/budget/simulate-shutdown",
        "AppBudgetSimulate",
        "convox:app:manage",
    ),
    form(
        "POST",
        "/apps/{app}/budget/dismiss-recovery",
        "AppBudgetDismissRecovery",
        "convox:app:manage",
    ),
    // The list carries every config's value (provider/k8s AppConfigList).
    get("/apps/{app}/configs", "AppConfigList", "convox:env:read").secret_reply(),
    get(
        "/apps/{app}/configs/{name}",
        "AppConfigGet",
        "convox:env:read",
    )
    .secret_reply(),
    form(
        "PUT",
        "/apps/{app}/configs/{name}",
        "AppConfigSet",
        "convox:env:set",
    ),
    get("/apps/{app}/balancers", "BalancerList", "convox:app:read"),
    // §4.2 Builds and objects
    get("/apps/{app}/builds", "BuildList", "convox:build:list"),
    form(
        "POST",
        "/apps/{app}/builds",
        "BuildCreate",
        "convox:build:create",
    )
    .body(BodyFormat::FormOrMultipart),
    download(
        "/apps/{app}/builds/{id}.tgz",
        "BuildExport",
        "convox:build:read",
    ),
    get("/apps/{app}/builds/{id}", "BuildGet", "convox:build:read"),
    // Used by build pods and external builds talking to the rack directly.
    form(
        "PUT",
        "/apps/{app}/builds/{id}",
        "BuildUpdate",
        "convox:build:update",
    ),
    upload(
        "POST",
        "/apps/{app}/builds/import",
        "BuildImport",
        "convox:build:create",
    ),
    form(
        "POST",
        "/apps/{app}/builds/{id}/image",
        "BuildImportImage",
        "convox:build:create",
    ),
    ws(
        "/apps/{app}/builds/{id}/logs",
        "BuildLogs",
        "convox:log:read",
    ),
    get("/apps/{app}/objects", "ObjectList", "convox:object:read"),
    bare(
        "HEAD",
        "/apps/{app}/objects/{key...}",
        "ObjectExists",
        "convox:object:read",
    ),
    download(
        "/apps/{app}/objects/{key...}",
        "ObjectFetch",
        "convox:object:read",
    ),
    upload(
        "POST",
        "/apps/{app}/objects/{key...}",
        "ObjectStore",
        "convox:object:create",
    ),
    bare(
        "DELETE",
        "/apps/{app}/objects/{key...}",
        "ObjectDelete",
        "convox:object:delete",
    ),
    // §4.3 Releases and environment (releases carry `env`)
    get("/apps/{app}/releases", "ReleaseList", "convox:release:list").secret_reply(),
    form(
        "POST",
        "/apps/{app}/releases",
        "ReleaseCreate",
        "convox:release:create",
    ),
    get(
        "/apps/{app}/releases/{id}",
        "ReleaseGet",
        "convox:release:read",
    )
    .secret_reply(),
    form(
        "POST",
        "/apps/{app}/releases/{id}/promote",
        "ReleasePromote",
        "convox:release:promote",
    ),
    // §4.4 Processes, services, logs
    get(
        "/apps/{app}/processes",
        "ProcessList",
        "convox:process:list",
    ),
    get(
        "/apps/{app}/processes/{pid}",
        "ProcessGet",
        "convox:process:read",
    ),
    // Sent by `convox run` when it finishes; never "destructive".
    bare(
        "DELETE",
        "/apps/{app}/processes/{pid}",
        "ProcessStop",
        "convox:process:terminate",
    ),
    // `convox run`: every option is a header, the body is empty.
    form(
        "POST",
        "/apps/{app}/services/{service}/processes",
        "ProcessRun",
        "convox:process:start",
    ),
    ws(
        "/apps/{app}/processes/{pid}/exec",
        "ProcessExec",
        "convox:process:exec",
    ),
    ws(
        "/apps/{app}/processes/{pid}/logs",
        "ProcessLogs",
        "convox:log:read",
    ),
    // Reads, writes and deletes any file in the container: as strong as exec.
    download(
        "/apps/{app}/processes/{pid}/files",
        "FilesDownload",
        "convox:process:exec",
    ),
    upload(
        "POST",
        "/apps/{app}/processes/{pid}/files",
        "FilesUpload",
        "convox:process:exec",
    ),
    bare(
        "DELETE",
        "/apps/{app}/processes/{pid}/files",
        "FilesDelete",
        "convox:process:exec",
    ),
    ws("/apps/{app}/logs", "AppLogs", "convox:log:read"),
    ws(
        "/apps/{app}/services/{service}/logs",
        "ServiceLogs",
        "convox:log:read",
    ),
    get("/apps/{app}/services", "ServiceList", "convox:app:read"),
    // `convox scale`.
    form(
        "PUT",
        "/apps/{app}/services/{service}",
        "ServiceUpdate",
        "convox:app:update",
    ),
    // `convox restart` restarts each service in turn.
    form(
        "POST",
        "/apps/{app}/services/{service}/restart",
        "ServiceRestart",
        "convox:app:restart",
    ),
    get(
        "/apps/{app}/services/{service}/metrics",
        "ServiceMetrics",
        "convox:app:read",
    ),
    form(
        "POST",
        "/apps/{app}/services/{service}/scale-override",
        "ServiceScaleOverrideSet",
        "convox:app:update",
    ),
    form(
        "POST",
        "/apps/{app}/services/{service}/triggers/enable",
        "ServiceTriggersEnable",
        "convox:app:update",
    ),
    form(
        "POST",
        "/apps/{app}/services/{service}/triggers/disable",
        "ServiceTriggersDisable",
        "convox:app:update",
    ),
    form(
        "POST",
        "/apps/{app}/services/{service}/triggers/threshold",
        "ServiceTriggersThresholdSet",
        "convox:app:update",
    ),
    // §4.5 Resources. Their `url` carries the connection credentials.
    get(
        "/apps/{app}/resources",
        "ResourceList",
        "convox:resource:read",
    )
    .secret_reply(),
    get(
        "/apps/{app}/resources/{name}",
        "ResourceGet",
        "convox:resource:read",
    )
    .secret_reply(),
    ws(
        "/apps/{app}/resources/{name}/console",
        "ResourceConsole",
        "convox:resource:exec",
    )
    .refused(DB_CONSOLE),
    download(
        "/apps/{app}/resources/{name}/data",
        "ResourceExport",
        "convox:resource:export",
    )
    .secret_reply()
    .refused(DB_EXPORT),
    upload(
        "PUT",
        "/apps/{app}/resources/{name}/data",
        "ResourceImport",
        "convox:resource:import",
    )
    .refused(DB_IMPORT),
    get("/resources", "SystemResourceList", "convox:resource:read").secret_reply(),
    bare(
        "OPTIONS",
        "/resources",
        "SystemResourceTypes",
        "convox:resource:read",
    ),
    form(
        "POST",
        "/resources",
        "SystemResourceCreate",
        "convox:resource:create",
    )
    .refused(RACK_RESOURCE),
    get(
        "/resources/{name}",
        "SystemResourceGet",
        "convox:resource:read",
    )
    .secret_reply(),
    form(
        "PUT",
        "/resources/{name}",
        "SystemResourceUpdate",
        "convox:resource:update",
    )
    .refused(RACK_RESOURCE),
    bare(
        "DELETE",
        "/resources/{name}",
        "SystemResourceDelete",
        "convox:resource:delete",
    )
    .refused(RACK_RESOURCE),
    form(
        "POST",
        "/resources/{name}/links",
        "SystemResourceLink",
        "convox:resource:update",
    )
    .refused(RACK_RESOURCE),
    bare(
        "DELETE",
        "/resources/{name}/links/{app}",
        "SystemResourceUnlink",
        "convox:resource:update",
    )
    .refused(RACK_RESOURCE),
    // §4.6 Rack / system
    get("/system", "SystemGet", "convox:rack:read"),
    form("PUT", "/system", "SystemUpdate", "convox:rack:update")
        .refused(RACK_UPDATE)
        .opened_by(PolicySwitch::AllowRackUpdate),
    get("/system/capacity", "CapacityGet", "convox:rack:read"),
    ws("/system/logs", "SystemLogs", "convox:log:read"),
    get("/system/metrics", "SystemMetrics", "convox:rack:read"),
    get("/system/processes", "SystemProcesses", "convox:rack:read"),
    get("/system/releases", "SystemReleases", "convox:rack:read"),
    form(
        "POST",
        "/system/jwt/token",
        "SystemJwtToken",
        "convox:rack:manage",
    )
    .secret_reply()
    .refused(JWT_MINT),
    form(
        "PUT",
        "/system/jwt/rotate",
        "SystemJwtSignKeyRotate",
        "convox:rack:manage",
    )
    .refused(JWT_ROTATE),
    form(
        "POST",
        "/system/karpenter/cleanup",
        "KarpenterCleanup",
        "convox:rack:manage",
    )
    .refused(KARPENTER),
    // Sends a notification event to the rack's webhooks: could spoof one.
    form("POST", "/events", "EventSend", "convox:event:create"),
    get("/instances", "InstanceList", "convox:instance:list"),
    form(
        "POST",
        "/instances/keyroll",
        "InstanceKeyroll",
        "convox:instance:keyroll",
    )
    .refused(KEYROLL),
    ws(
        "/instances/{id}/shell",
        "InstanceShell",
        "convox:instance:exec",
    )
    .refused(NODE_SHELL),
    bare(
        "DELETE",
        "/instances/{id}",
        "InstanceTerminate",
        "convox:instance:terminate",
    )
    .refused(NODE_TERMINATE),
    get("/certificates", "CertificateList", "convox:cert:list"),
    form(
        "POST",
        "/certificates",
        "CertificateCreate",
        "convox:cert:create",
    )
    .refused(CERT_UPLOAD),
    form(
        "POST",
        "/certificates/generate",
        "CertificateGenerate",
        "convox:cert:generate",
    )
    .refused(CERT_CHANGE),
    form(
        "POST",
        "/certificates/{id}/renew",
        "CertificateRenew",
        "convox:cert:update",
    )
    .refused(CERT_CHANGE),
    bare(
        "DELETE",
        "/certificates/{id}",
        "CertificateDelete",
        "convox:cert:delete",
    )
    .refused(CERT_CHANGE),
    form(
        "PUT",
        "/apps/{app}/ssl/{service}/{port}",
        "CertificateApply",
        "convox:cert:update",
    )
    .refused(CERT_CHANGE),
    get(
        "/letsencrypt/config",
        "LetsEncryptConfigGet",
        "convox:cert:read",
    ),
    form(
        "PUT",
        "/letsencrypt/config",
        "LetsEncryptConfigApply",
        "convox:cert:manage",
    )
    .refused(CERT_CHANGE),
    get("/registries", "RegistryList", "convox:registry:list")
        .secret_reply()
        .refused(REGISTRY_LIST),
    form("POST", "/registries", "RegistryAdd", "convox:registry:add").refused(REGISTRY_CHANGE),
    bare(
        "DELETE",
        "/registries/{server...}",
        "RegistryRemove",
        "convox:registry:remove",
    )
    .refused(REGISTRY_CHANGE),
    // Docker Registry v2 for the app repositories: pulls read, anything else pushes.
    proxy("GET", "/v2/{path...}", "RegistryProxy", "convox:build:read"),
    proxy(
        "HEAD",
        "/v2/{path...}",
        "RegistryProxy",
        "convox:build:read",
    ),
    proxy("*", "/v2/{path...}", "RegistryProxy", "convox:build:create").refused(IMAGE_PUSH),
    ws("/proxy/{host}/{port}", "Proxy", "convox:rack:proxy").refused(TUNNEL),
    proxy(
        "*",
        "/custom/http/proxy/{path...}",
        "ProxyHttpService",
        "convox:rack:proxy",
    )
    .refused(TUNNEL),
    // §4.7 Legacy (v2 rack) paths the current CLI still calls (sdk/compat.go).
    get(
        "/apps/{app}/parameters",
        "AppParametersGetV2",
        "convox:app:read",
    )
    .legacy(),
    // Every parameter is its own form field here.
    form(
        "POST",
        "/apps/{app}/parameters",
        "AppParametersSetV2",
        "convox:app:update",
    )
    .legacy(),
    upload(
        "POST",
        "/apps/{app}/environment",
        "EnvironmentSetV2",
        "convox:env:set",
    )
    .body(BodyFormat::EnvLines)
    .legacy(),
    // `env unset` on old racks (sdk/compat.go EnvironmentUnset, pkg/cli/env.go).
    bare(
        "DELETE",
        "/apps/{app}/environment/{key}",
        "EnvironmentUnsetV2",
        "convox:env:set",
    )
    .legacy(),
    get("/apps/{app}/formation", "FormationGetV2", "convox:app:read").legacy(),
    form(
        "POST",
        "/apps/{app}/formation/{service}",
        "FormationUpdateV2",
        "convox:app:update",
    )
    .legacy(),
    get("/apps/{app}/ssl", "SslListV2", "convox:app:read").legacy(),
    ws(
        "/instances/{id}/ssh",
        "InstanceShellV2",
        "convox:instance:exec",
    )
    .refused(NODE_SHELL)
    .legacy(),
    ws(
        "/apps/{app}/processes/{service}/run",
        "ProcessRunAttachedV2",
        "convox:process:start",
    )
    .legacy(),
    form(
        "POST",
        "/apps/{app}/processes/{service}/run",
        "ProcessRunDetachedV2",
        "convox:process:start",
    )
    .legacy(),
    // The server comes in the query (`?server=`).
    bare(
        "DELETE",
        "/registries",
        "RegistryRemoveV2",
        "convox:registry:remove",
    )
    .refused(REGISTRY_CHANGE)
    .legacy(),
];

/// Handlers the other modules single out.
pub(crate) mod handler {
    pub const RELEASE_CREATE: &str = "ReleaseCreate";
    pub const SYSTEM_UPDATE: &str = "SystemUpdate";
    pub const PROCESS_STOP: &str = "ProcessStop";
    pub const PROCESS_RUN: &str = "ProcessRun";
    pub const PROCESS_EXEC: &str = "ProcessExec";
    pub const RUN_ATTACHED_V2: &str = "ProcessRunAttachedV2";
    pub const RUN_DETACHED_V2: &str = "ProcessRunDetachedV2";
    pub const INSTANCE_SHELL: &str = "InstanceShell";
    pub const INSTANCE_SHELL_V2: &str = "InstanceShellV2";
}

/// A route chosen for a request, with its path parameters (decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    pub route: &'static Route,
    /// The request's real method (differs from `route.method` only for `*`).
    pub method: Method,
    pub params: Vec<(&'static str, String)>,
}

impl RouteMatch {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `GET /apps/{app}/processes`, for events (the real method for `*` routes).
    pub fn name(&self) -> String {
        format!("{} {}", self.method, self.route.pattern)
    }

    /// Starts a one-off process (`convox run`), v3 or v2.
    pub fn is_run(&self) -> bool {
        matches!(
            self.route.handler,
            handler::PROCESS_RUN | handler::RUN_ATTACHED_V2 | handler::RUN_DETACHED_V2
        )
    }

    /// Runs a command in a process (`convox exec`, and `run`'s second step).
    pub fn is_exec(&self) -> bool {
        self.route.handler == handler::PROCESS_EXEC
    }
}

/// Why no route was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// No route: 404 with a `deny` event; never forwarded (decision 6).
    #[error("unknown rack route")]
    NotFound,
    /// The path is a websocket route but the request is no upgrade, or the
    /// request is an upgrade to a route that is not a websocket.
    #[error("websocket upgrade does not match the route")]
    WebSocketMismatch,
}

impl RouteError {
    pub fn status(&self) -> http::StatusCode {
        match self {
            RouteError::NotFound => http::StatusCode::NOT_FOUND,
            RouteError::WebSocketMismatch => http::StatusCode::BAD_REQUEST,
        }
    }
}

/// Choose the route for a request. `websocket_upgrade`: see [`is_websocket_upgrade`].
pub fn match_route(
    method: &Method,
    path: &NormalizedPath,
    websocket_upgrade: bool,
) -> Result<RouteMatch, RouteError> {
    let mut mismatch = false;
    for route in ROUTES {
        if route.method != "*" && route.method != method.as_str() {
            continue;
        }
        let Some(params) = match_pattern(route.pattern, &path.segments) else {
            continue;
        };
        if route.websocket != websocket_upgrade {
            mismatch = true;
            continue;
        }
        return Ok(RouteMatch {
            route,
            method: method.clone(),
            params,
        });
    }
    if mismatch {
        Err(RouteError::WebSocketMismatch)
    } else {
        Err(RouteError::NotFound)
    }
}

/// The request asks for a websocket (`Upgrade` names `websocket`, any case).
/// Only a `GET` can be one: pass `method == GET && is_websocket_upgrade(..)`.
pub fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    headers.get_all(http::header::UPGRADE).iter().any(|v| {
        v.to_str().is_ok_and(|s| {
            s.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("websocket"))
        })
    })
}

fn match_pattern(
    pattern: &'static str,
    segments: &[String],
) -> Option<Vec<(&'static str, String)>> {
    let mut params = Vec::new();
    let mut parts = pattern.trim_start_matches('/').split('/').peekable();
    let mut count = 0;
    while let Some(part) = parts.next() {
        let i = count;
        count += 1;
        if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix("...}")) {
            // The rest of the path: one or more segments.
            if parts.peek().is_some() || segments.len() <= i {
                return None;
            }
            params.push((name, segments[i..].join("/")));
            return Some(params);
        }
        let segment = segments.get(i)?;
        if let Some(inner) = part.strip_prefix('{') {
            let (name, suffix) = inner.split_once('}')?;
            let value = segment.strip_suffix(suffix)?;
            if value.is_empty() {
                return None;
            }
            params.push((name, value.to_owned()));
        } else if part != segment {
            return None;
        }
    }
    (segments.len() == count).then_some(params)
}

fn first<'a>(form: Option<&'a [(String, String)]>, name: &str) -> Option<&'a str> {
    form?
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn has(form: Option<&[(String, String)]>, name: &str) -> bool {
    first(form, name).is_some()
}

/// The permission to check, after reading the form where it changes the
/// meaning of the request.
pub fn permission_for(m: &RouteMatch, form: Option<&[(String, String)]>) -> &'static str {
    match m.route.handler {
        // Any `env` field, even empty, replaces the whole environment.
        handler::RELEASE_CREATE if has(form, "env") => "convox:env:set",
        // `rack params set` and `rack scale` change the rack itself;
        // `rack update` (version) is `convox:rack:update`.
        handler::SYSTEM_UPDATE
            if has(form, "parameters") || has(form, "count") || has(form, "type") =>
        {
            "convox:rack:manage"
        }
        _ => m.route.permission,
    }
}

/// The command of run and exec, as the rack will read it; `None` when the
/// route has none.
///
/// - exec (`ProcessExec`, v2 run): the rack's `c.Value("command")` — the form
///   (for a websocket: the query) first, when not empty, then the `Command`
///   header;
/// - run (`ProcessRun`), instance shells: the `Command` header only.
pub fn command_of(
    m: &RouteMatch,
    headers: &HeaderMap,
    form: Option<&[(String, String)]>,
) -> Option<String> {
    let header = || {
        headers
            .get("command")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    match m.route.handler {
        handler::PROCESS_EXEC | handler::RUN_ATTACHED_V2 | handler::RUN_DETACHED_V2 => {
            first(form, "command")
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .or_else(header)
        }
        handler::PROCESS_RUN | handler::INSTANCE_SHELL | handler::INSTANCE_SHELL_V2 => header(),
        _ => None,
    }
}

/// Every command a request carries for run/exec (all `command` form fields and
/// all `Command` headers), so the policy judges each one, not only the one the
/// rack is expected to pick.
pub fn command_candidates(
    m: &RouteMatch,
    headers: &HeaderMap,
    form: Option<&[(String, String)]>,
) -> Vec<String> {
    if !(m.is_run() || m.is_exec()) {
        return Vec::new();
    }
    let mut all: Vec<String> = form
        .unwrap_or_default()
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.clone())
        .collect();
    all.extend(
        headers
            .get_all("command")
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
    );
    all
}

/// Largest body the engine buffers for [`Route::inspect_form`] routes: Go's
/// own limit for url-encoded forms (`net/http` `maxFormSize`), so anything the
/// rack would read, we read too. Larger bodies are refused (413).
pub const FORM_BODY_LIMIT: usize = 10 << 20;

/// What the engine does with a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyPlan {
    /// Stream it to the rack unread.
    Stream,
    /// Read it whole (at most [`FORM_BODY_LIMIT`]), pass it to [`body_fields`].
    Buffer,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// 415: the rack would read form fields from this body that we cannot.
    #[error(
        "unsupported content type for this route: send an application/x-www-form-urlencoded form"
    )]
    UnsupportedMediaType,
}

impl BodyError {
    pub fn status(&self) -> http::StatusCode {
        http::StatusCode::UNSUPPORTED_MEDIA_TYPE
    }
}

fn media_type(content_type: Option<&str>) -> String {
    content_type
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

impl Route {
    /// Buffer or stream the body, from the route and the request's `Content-Type`.
    pub fn body_plan(&self, content_type: Option<&str>) -> Result<BodyPlan, BodyError> {
        let media = media_type(content_type);
        match self.body {
            BodyFormat::Form if media == "multipart/form-data" => {
                Err(BodyError::UnsupportedMediaType)
            }
            BodyFormat::Form | BodyFormat::EnvLines => Ok(BodyPlan::Buffer),
            BodyFormat::FormOrMultipart if media == "multipart/form-data" => Ok(BodyPlan::Stream),
            BodyFormat::FormOrMultipart => Ok(BodyPlan::Buffer),
            BodyFormat::None | BodyFormat::Raw | BodyFormat::Passthrough => Ok(BodyPlan::Stream),
        }
    }
}

/// The fields of a buffered body, as the rack reads them: a url-encoded form
/// is parsed (Go parses nothing else into the form); legacy env lines become
/// the one field `env`.
pub fn body_fields(
    route: &Route,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Vec<(String, String)>, BodyError> {
    if body.is_empty() {
        return Ok(Vec::new());
    }
    match (route.body, media_type(content_type).as_str()) {
        (BodyFormat::EnvLines, _) => Ok(vec![(
            "env".to_owned(),
            String::from_utf8_lossy(body).into_owned(),
        )]),
        (_, "multipart/form-data") if route.body == BodyFormat::Form => {
            Err(BodyError::UnsupportedMediaType)
        }
        (BodyFormat::Form | BodyFormat::FormOrMultipart, "application/x-www-form-urlencoded") => {
            Ok(parse_urlencoded(body))
        }
        _ => Ok(Vec::new()),
    }
}

/// Go's `r.Form` for a request: body fields first, then the query's.
pub fn request_form(
    query: Option<&str>,
    body_fields: Option<&[(String, String)]>,
) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = body_fields.unwrap_or_default().to_vec();
    if let Some(q) = query {
        all.extend(parse_urlencoded(q.as_bytes()));
    }
    all
}

pub(crate) fn parse_urlencoded(bytes: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(bytes)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::path::normalize;
    use crate::rbac::permissions::lowest_role_with;
    use std::collections::BTreeSet;

    fn m(method: &str, path: &str) -> Result<RouteMatch, RouteError> {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        match_route(&method, &normalize(path).unwrap(), false)
    }

    fn m_ws(path: &str) -> Result<RouteMatch, RouteError> {
        match_route(&Method::GET, &normalize(path).unwrap(), true)
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// `{app}`, `{name}`, `{key...}` → `{}` / `{...}`: the spec uses several names
    /// for the same segment.
    fn shape(pattern: &str) -> String {
        let mut out = String::new();
        let mut rest = pattern;
        while let Some(start) = rest.find('{') {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').unwrap() + start;
            let inner = &rest[start + 1..end];
            out.push_str(if inner.ends_with("...") {
                "{...}"
            } else {
                "{}"
            });
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }

    fn example_path(pattern: &str) -> String {
        let mut out = String::new();
        let mut rest = pattern;
        let mut n = 0;
        while let Some(start) = rest.find('{') {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').unwrap() + start;
            n += 1;
            if rest[start + 1..end].ends_with("...") {
                out.push_str(&format!("tmp/x{n}/obj.tgz"));
            } else {
                out.push_str(&format!("x{n}"));
            }
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }

    struct SpecLine {
        methods: Vec<&'static str>,
        any: bool,
        pattern: &'static str,
        websocket: bool,
    }

    /// `gateway/tests/data/convox-routes.txt`: `METHOD[,METHOD] PATH [ws]`.
    fn spec_routes() -> Vec<SpecLine> {
        include_str!("../../tests/data/convox-routes.txt")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                let mut words = l.split_whitespace();
                let method = words.next().unwrap();
                let pattern = words.next().unwrap();
                let websocket = words.next() == Some("ws");
                let any = method == "ANY";
                let methods = if any {
                    vec!["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
                } else {
                    method.split(',').collect()
                };
                SpecLine {
                    methods,
                    any,
                    pattern,
                    websocket,
                }
            })
            .collect()
    }

    #[test]
    fn every_spec_route_is_mapped_or_refused() {
        let lines = spec_routes();
        assert!(lines.len() > 100, "the route list looks truncated");
        for line in &lines {
            let path = example_path(line.pattern);
            for method in &line.methods {
                let method = Method::from_bytes(method.as_bytes()).unwrap();
                let got = match_route(&method, &normalize(&path).unwrap(), line.websocket)
                    .unwrap_or_else(|e| panic!("{method} {} ({path}): {e}", line.pattern));
                assert_eq!(
                    shape(got.route.pattern),
                    shape(line.pattern),
                    "{method} {path} matched {}",
                    got.name()
                );
                assert_eq!(got.route.websocket, line.websocket, "{}", got.name());
            }
        }
    }

    #[test]
    fn the_table_has_no_route_outside_the_spec_list() {
        let listed: BTreeSet<(String, String)> = spec_routes()
            .iter()
            .flat_map(|l| {
                let methods: Vec<String> = if l.any {
                    vec!["*".into(), "GET".into(), "HEAD".into()]
                } else {
                    l.methods.iter().map(|m| (*m).to_owned()).collect()
                };
                methods
                    .into_iter()
                    .map(|m| (m, shape(l.pattern)))
                    .collect::<Vec<_>>()
            })
            .collect();
        for route in ROUTES {
            assert!(
                listed.contains(&(route.method.to_owned(), shape(route.pattern))),
                "{} is in neither the spec list nor the documented extras",
                route.name()
            );
        }
    }

    #[test]
    fn every_route_is_well_formed() {
        let mut seen = BTreeSet::new();
        for r in ROUTES {
            assert!(
                seen.insert((r.method, r.pattern)),
                "{} is listed twice",
                r.name()
            );
            let parts: Vec<&str> = r.permission.split(':').collect();
            assert!(
                parts.len() == 3 && parts[0] == "convox" && parts.iter().all(|p| !p.is_empty()),
                "{}: bad permission {}",
                r.name(),
                r.permission
            );
            assert!(lowest_role_with(r.permission).is_some(), "{}", r.permission);
            assert!(r.pattern.starts_with('/'));
            assert_eq!(r.websocket, r.kind == RouteKind::WebSocket);
            if r.websocket {
                assert_eq!(r.method, "GET");
            }
            if r.opened_by.is_some() {
                assert!(r.refused.is_some(), "{}", r.name());
            }
            if let Some(why) = r.refused {
                assert!(why.len() > 20, "{}: give the reason", r.name());
            }
        }
    }

    #[test]
    fn params_are_extracted_by_name() {
        let got = m("GET", "/apps/myapp/processes/p-1").unwrap();
        assert_eq!(got.route.handler, "ProcessGet");
        assert_eq!(got.param("app"), Some("myapp"));
        assert_eq!(got.param("pid"), Some("p-1"));
        assert_eq!(got.param("nope"), None);
        assert_eq!(got.name(), "GET /apps/{app}/processes/{pid}");

        let got = m("POST", "/apps/myapp/objects/tmp/abc/def.tgz").unwrap();
        assert_eq!(got.route.handler, "ObjectStore");
        assert_eq!(got.param("key"), Some("tmp/abc/def.tgz"));

        let got = m("DELETE", "/registries/registry.example.com:5000/team").unwrap();
        assert_eq!(got.param("server"), Some("registry.example.com:5000/team"));
    }

    #[test]
    fn the_tgz_export_is_tried_before_the_build() {
        let got = m("GET", "/apps/myapp/builds/B123.tgz").unwrap();
        assert_eq!(got.route.handler, "BuildExport");
        assert_eq!(got.param("id"), Some("B123"));
        let got = m("GET", "/apps/myapp/builds/B123").unwrap();
        assert_eq!(got.route.handler, "BuildGet");
        // gorilla's `[^/]+` needs one character before the suffix.
        assert_eq!(
            m("GET", "/apps/myapp/builds/.tgz").unwrap().route.handler,
            "BuildGet"
        );
        assert_eq!(
            m("POST", "/apps/myapp/builds/import")
                .unwrap()
                .route
                .handler,
            "BuildImport"
        );
    }

    #[test]
    fn unknown_routes_and_methods_are_not_found() {
        for (method, path) in [
            ("GET", "/"),
            ("GET", "/check"),
            ("GET", "/apps/myapp/env"),
            ("GET", "/APPS"),
            ("HEAD", "/apps"),
            ("PATCH", "/apps/myapp"),
            ("POST", "/system"),
            ("GET", "/apps/myapp/objects/"),
            ("POST", "/apps/myapp/objects"),
            ("GET", "/v2"),
            ("DELETE", "/apps/myapp/releases/R1"),
            ("GET", "/api/v1/rack-proxy/apps"),
        ] {
            let path = normalize(path);
            let Ok(path) = path else { continue };
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            assert_eq!(
                match_route(&method, &path, false).unwrap_err(),
                RouteError::NotFound,
                "{method} {}",
                path.path
            );
        }
        assert_eq!(RouteError::NotFound.status(), http::StatusCode::NOT_FOUND);
    }

    #[test]
    fn websockets_match_only_upgrades() {
        assert_eq!(
            m_ws("/apps/myapp/processes/p1/exec").unwrap().route.handler,
            "ProcessExec"
        );
        assert_eq!(
            m("GET", "/apps/myapp/processes/p1/exec").unwrap_err(),
            RouteError::WebSocketMismatch
        );
        assert_eq!(m_ws("/apps").unwrap_err(), RouteError::WebSocketMismatch);
        assert_eq!(
            m_ws("/v2/myapp/manifests/latest").unwrap_err(),
            RouteError::WebSocketMismatch
        );
        assert_eq!(m_ws("/nope").unwrap_err(), RouteError::NotFound);
        assert_eq!(
            RouteError::WebSocketMismatch.status(),
            http::StatusCode::BAD_REQUEST
        );
        let mut h = HeaderMap::new();
        assert!(!is_websocket_upgrade(&h));
        h.insert("upgrade", "WebSocket".parse().unwrap());
        assert!(is_websocket_upgrade(&h));
        h.insert("upgrade", "h2c".parse().unwrap());
        assert!(!is_websocket_upgrade(&h));
    }

    #[test]
    fn any_method_routes_split_reads_from_writes() {
        assert_eq!(
            m("GET", "/v2/myapp/manifests/latest")
                .unwrap()
                .route
                .permission,
            "convox:build:read"
        );
        assert!(m("HEAD", "/v2/myapp/blobs/sha256:1")
            .unwrap()
            .route
            .refused
            .is_none());
        let push = m("PUT", "/v2/myapp/manifests/latest").unwrap();
        assert!(push.route.refused.is_some());
        assert_eq!(push.name(), "PUT /v2/{path...}");
        assert!(m("PATCH", "/v2/myapp/blobs/uploads/u1")
            .unwrap()
            .route
            .refused
            .is_some());
        assert!(m("GET", "/custom/http/proxy/a/b")
            .unwrap()
            .route
            .refused
            .is_some());
    }

    #[test]
    fn the_cli_probes_are_their_own_kind() {
        for p in ["/machines", "/racks"] {
            let got = m("GET", p).unwrap();
            assert_eq!(got.route.kind, RouteKind::Probe);
            assert!(got.route.refused.is_none());
        }
    }

    #[test]
    fn env_in_a_release_is_an_env_change() {
        let r = m("POST", "/apps/myapp/releases").unwrap();
        assert_eq!(permission_for(&r, None), "convox:release:create");
        assert_eq!(
            permission_for(&r, Some(&pairs(&[("build", "B1")]))),
            "convox:release:create"
        );
        assert_eq!(
            permission_for(&r, Some(&pairs(&[("env", "A=1")]))),
            "convox:env:set"
        );
        // An empty env wipes the environment: still an env change.
        assert_eq!(
            permission_for(&r, Some(&pairs(&[("build", "B1"), ("env", "")]))),
            "convox:env:set"
        );
        // Through the query string, which the rack reads as form too.
        let form = request_form(Some("env=A%3D1"), None);
        assert_eq!(permission_for(&r, Some(&form)), "convox:env:set");
    }

    #[test]
    fn put_system_splits_update_from_parameters_and_scale() {
        let r = m("PUT", "/system").unwrap();
        assert_eq!(
            permission_for(
                &r,
                Some(&pairs(&[("version", "3.19.1"), ("force", "false")]))
            ),
            "convox:rack:update"
        );
        assert_eq!(
            permission_for(&r, Some(&pairs(&[("parameters", "a=1")]))),
            "convox:rack:manage"
        );
        assert_eq!(
            permission_for(&r, Some(&pairs(&[("count", "3")]))),
            "convox:rack:manage"
        );
        assert_eq!(
            permission_for(&r, Some(&pairs(&[("type", "t3.large")]))),
            "convox:rack:manage"
        );
        assert_eq!(
            permission_for(
                &r,
                Some(&pairs(&[("version", "3.19.1"), ("parameters", "a=1")]))
            ),
            "convox:rack:manage"
        );
        assert_eq!(permission_for(&r, None), "convox:rack:update");
    }

    #[test]
    fn commands_are_read_where_the_rack_reads_them() {
        let mut h = HeaderMap::new();
        h.insert("command", "bin/pre_release".parse().unwrap());
        let exec = m_ws("/apps/myapp/processes/p1/exec").unwrap();
        assert_eq!(
            command_of(&exec, &h, None).as_deref(),
            Some("bin/pre_release")
        );
        // The rack's c.Value reads the form (here: the query) before the header.
        let q = request_form(Some("command=rails+console"), None);
        assert_eq!(
            command_of(&exec, &h, Some(&q)).as_deref(),
            Some("rails console")
        );
        let empty = request_form(Some("command="), None);
        assert_eq!(
            command_of(&exec, &h, Some(&empty)).as_deref(),
            Some("bin/pre_release")
        );
        assert_eq!(
            command_candidates(&exec, &h, Some(&q)),
            ["rails console", "bin/pre_release"]
        );

        let run = m("POST", "/apps/myapp/services/command/processes").unwrap();
        assert_eq!(
            command_of(&run, &h, Some(&q)).as_deref(),
            Some("bin/pre_release")
        );
        let detached = m("POST", "/apps/myapp/processes/command/run").unwrap();
        let f = pairs(&[("command", "rake db:seed")]);
        assert_eq!(
            command_of(&detached, &h, Some(&f)).as_deref(),
            Some("rake db:seed")
        );
        let attached = m_ws("/apps/myapp/processes/command/run").unwrap();
        assert_eq!(
            command_of(&attached, &h, None).as_deref(),
            Some("bin/pre_release")
        );
        let list = m("GET", "/apps/myapp/processes").unwrap();
        assert_eq!(command_of(&list, &h, None), None);
        assert!(command_candidates(&list, &h, None).is_empty());
    }

    #[test]
    fn bodies_are_buffered_only_where_they_are_read() {
        let release = m("POST", "/apps/myapp/releases").unwrap().route;
        assert!(release.inspect_form);
        assert_eq!(
            release.body_plan(Some("application/x-www-form-urlencoded")),
            Ok(BodyPlan::Buffer)
        );
        assert_eq!(
            release.body_plan(Some("multipart/form-data; boundary=x")),
            Err(BodyError::UnsupportedMediaType)
        );
        assert_eq!(
            body_fields(
                release,
                Some("application/x-www-form-urlencoded"),
                b"env=A%3D1%0AB%3D2&description=x"
            )
            .unwrap(),
            pairs(&[("env", "A=1\nB=2"), ("description", "x")])
        );
        // Go reads form fields from url-encoded bodies only.
        assert!(
            body_fields(release, Some("application/octet-stream"), b"env=A")
                .unwrap()
                .is_empty()
        );

        let builds = m("POST", "/apps/myapp/builds").unwrap().route;
        assert_eq!(
            builds.body_plan(Some("multipart/form-data; boundary=x")),
            Ok(BodyPlan::Stream)
        );
        assert_eq!(
            builds.body_plan(Some("application/x-www-form-urlencoded")),
            Ok(BodyPlan::Buffer)
        );

        let object = m("POST", "/apps/myapp/objects/tmp/a.tgz").unwrap().route;
        assert!(!object.inspect_form);
        assert_eq!(
            object.body_plan(Some("application/octet-stream")),
            Ok(BodyPlan::Stream)
        );

        let legacy_env = m("POST", "/apps/myapp/environment").unwrap().route;
        assert!(legacy_env.inspect_form);
        assert_eq!(
            legacy_env.body_plan(Some("application/octet-stream")),
            Ok(BodyPlan::Buffer)
        );
        assert_eq!(
            body_fields(legacy_env, Some("application/octet-stream"), b"A=1\nB=2").unwrap(),
            pairs(&[("env", "A=1\nB=2")])
        );
        assert_eq!(
            BodyError::UnsupportedMediaType.status(),
            http::StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
    }

    #[test]
    fn the_form_is_body_then_query_like_go() {
        let body = pairs(&[("force", "false")]);
        assert_eq!(
            request_form(Some("force=true&x=1"), Some(&body)),
            pairs(&[("force", "false"), ("force", "true"), ("x", "1")])
        );
        assert!(request_form(None, None).is_empty());
    }
}
