//! The table itself: every rack route on one line, in matching order, with
//! the builders that spell a route's kind, body and refusal.

use super::{BodyFormat, PolicySwitch, Route, RouteKind};

/// Method, pattern, handler and permission: all spelled in the table.
type Name = &'static str;

impl Route {
    /// A route with no body the rack reads and a JSON reply; the builders
    /// below give it its kind and body.
    const fn new(method: Name, pattern: Name, handler: Name, permission: Name) -> Route {
        Route {
            method,
            pattern,
            handler,
            permission,
            kind: RouteKind::Json,
            websocket: false,
            inspect_form: false,
            body: BodyFormat::None,
            refused: None,
            opened_by: None,
            reply_has_secrets: false,
            legacy: false,
        }
    }

    const fn kind(self, kind: RouteKind) -> Route {
        Route {
            kind,
            websocket: matches!(kind, RouteKind::WebSocket),
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
}

const fn get(pattern: Name, handler: Name, permission: Name) -> Route {
    bare("GET", pattern, handler, permission)
}

/// POST/PUT with a form body (or none).
const fn form(method: Name, pattern: Name, handler: Name, permission: Name) -> Route {
    Route::new(method, pattern, handler, permission).body(BodyFormat::Form)
}

/// DELETE, HEAD, OPTIONS: no body the rack reads.
const fn bare(method: Name, pattern: Name, handler: Name, permission: Name) -> Route {
    Route::new(method, pattern, handler, permission)
}

const fn ws(pattern: Name, handler: Name, permission: Name) -> Route {
    Route::new("GET", pattern, handler, permission).kind(RouteKind::WebSocket)
}

const fn upload(method: Name, pattern: Name, handler: Name, permission: Name) -> Route {
    Route::new(method, pattern, handler, permission)
        .kind(RouteKind::Upload)
        .body(BodyFormat::Raw)
}

const fn download(pattern: Name, handler: Name, permission: Name) -> Route {
    Route::new("GET", pattern, handler, permission).kind(RouteKind::Download)
}

const fn proxy(method: Name, pattern: Name, handler: Name, permission: Name) -> Route {
    Route::new(method, pattern, handler, permission)
        .kind(RouteKind::Proxy)
        .body(BodyFormat::Passthrough)
}

const fn probe(pattern: Name, handler: Name) -> Route {
    Route::new("GET", pattern, handler, "convox:rack:read").kind(RouteKind::Probe)
}

// Why routes are refused: rack-level operations are left to the infrastructure team, and no
// credential, private key or database leaves the rack through the gateway.
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
#[rustfmt::skip]
pub static ROUTES: &[Route] = &[
    // Credential check used by `convox login` (any caller with rack access).
    get("/auth", "Auth", "convox:rack:read"),
    // The CLI's pre-websocket probes (see `RouteKind::Probe`).
    probe("/machines", "MachinesProbe"),
    probe("/racks", "RacksProbe"),
    // Apps
    get("/apps", "AppList", "convox:app:list"),
    form("POST", "/apps", "AppCreate", "convox:app:create"),
    get("/apps/{app}", "AppGet", "convox:app:read"),
    form("PUT", "/apps/{app}", "AppUpdate", "convox:app:update"),
    bare("DELETE", "/apps/{app}", "AppDelete", "convox:app:delete"),
    form("POST", "/apps/{app}/cancel", "AppCancel", "convox:app:update"),
    // Diagnose includes pod log lines.
    get("/apps/{app}/diagnose", "AppDiagnose", "convox:log:read"),
    get("/apps/{app}/manifest/services/{service}", "AppManifestService", "convox:app:read"),
    get("/apps/{app}/metrics", "AppMetrics", "convox:app:read"),
    get("/apps/{app}/metrics-by-service", "MetricsByService", "convox:app:read"),
    get("/apps/{app}/cost", "AppCost", "convox:app:read"),
    get("/apps/{app}/budget", "AppBudgetGet", "convox:app:read"),
    // A budget's at-cap action can shut the app down: admin.
    form("POST", "/apps/{app}/budget", "AppBudgetSet", "convox:app:manage"),
    bare("DELETE", "/apps/{app}/budget", "AppBudgetClear", "convox:app:manage"),
    form("POST", "/apps/{app}/budget/reset", "AppBudgetReset", "convox:app:manage"),
    get("/apps/{app}/budget/shutdown-state", "AppBudgetShutdownStateGet", "convox:app:read"),
    form("POST", "/apps/{app}/budget/simulate-shutdown", "AppBudgetSimulate", "convox:app:manage"),
    form("POST", "/apps/{app}/budget/dismiss-recovery", "AppBudgetDismissRecovery", "convox:app:manage"),
    // The list carries every config's value (provider/k8s AppConfigList).
    get("/apps/{app}/configs", "AppConfigList", "convox:env:read").secret_reply(),
    get("/apps/{app}/configs/{name}", "AppConfigGet", "convox:env:read").secret_reply(),
    form("PUT", "/apps/{app}/configs/{name}", "AppConfigSet", "convox:env:set"),
    get("/apps/{app}/balancers", "BalancerList", "convox:app:read"),
    // Builds and objects
    get("/apps/{app}/builds", "BuildList", "convox:build:list"),
    form("POST", "/apps/{app}/builds", "BuildCreate", "convox:build:create").body(BodyFormat::FormOrMultipart),
    download("/apps/{app}/builds/{id}.tgz", "BuildExport", "convox:build:read"),
    get("/apps/{app}/builds/{id}", "BuildGet", "convox:build:read"),
    // Used by build pods and external builds talking to the rack directly.
    form("PUT", "/apps/{app}/builds/{id}", "BuildUpdate", "convox:build:update"),
    upload("POST", "/apps/{app}/builds/import", "BuildImport", "convox:build:create"),
    form("POST", "/apps/{app}/builds/{id}/image", "BuildImportImage", "convox:build:create"),
    ws("/apps/{app}/builds/{id}/logs", "BuildLogs", "convox:log:read"),
    get("/apps/{app}/objects", "ObjectList", "convox:object:read"),
    bare("HEAD", "/apps/{app}/objects/{key...}", "ObjectExists", "convox:object:read"),
    download("/apps/{app}/objects/{key...}", "ObjectFetch", "convox:object:read"),
    upload("POST", "/apps/{app}/objects/{key...}", "ObjectStore", "convox:object:create"),
    bare("DELETE", "/apps/{app}/objects/{key...}", "ObjectDelete", "convox:object:delete"),
    // Releases and environment (releases carry `env`)
    get("/apps/{app}/releases", "ReleaseList", "convox:release:list").secret_reply(),
    form("POST", "/apps/{app}/releases", "ReleaseCreate", "convox:release:create"),
    get("/apps/{app}/releases/{id}", "ReleaseGet", "convox:release:read").secret_reply(),
    form("POST", "/apps/{app}/releases/{id}/promote", "ReleasePromote", "convox:release:promote"),
    // Processes, services, logs
    get("/apps/{app}/processes", "ProcessList", "convox:process:list"),
    get("/apps/{app}/processes/{pid}", "ProcessGet", "convox:process:read"),
    // Sent by `convox run` when it finishes; never "destructive".
    bare("DELETE", "/apps/{app}/processes/{pid}", "ProcessStop", "convox:process:terminate"),
    // `convox run`: every option is a header, the body is empty.
    form("POST", "/apps/{app}/services/{service}/processes", "ProcessRun", "convox:process:start"),
    ws("/apps/{app}/processes/{pid}/exec", "ProcessExec", "convox:process:exec"),
    ws("/apps/{app}/processes/{pid}/logs", "ProcessLogs", "convox:log:read"),
    // Reads, writes and deletes any file in the container: as strong as exec.
    download("/apps/{app}/processes/{pid}/files", "FilesDownload", "convox:process:exec"),
    upload("POST", "/apps/{app}/processes/{pid}/files", "FilesUpload", "convox:process:exec"),
    bare("DELETE", "/apps/{app}/processes/{pid}/files", "FilesDelete", "convox:process:exec"),
    ws("/apps/{app}/logs", "AppLogs", "convox:log:read"),
    ws("/apps/{app}/services/{service}/logs", "ServiceLogs", "convox:log:read"),
    get("/apps/{app}/services", "ServiceList", "convox:app:read"),
    // `convox scale`.
    form("PUT", "/apps/{app}/services/{service}", "ServiceUpdate", "convox:app:update"),
    // `convox restart` restarts each service in turn.
    form("POST", "/apps/{app}/services/{service}/restart", "ServiceRestart", "convox:app:restart"),
    get("/apps/{app}/services/{service}/metrics", "ServiceMetrics", "convox:app:read"),
    form("POST", "/apps/{app}/services/{service}/scale-override", "ServiceScaleOverrideSet", "convox:app:update"),
    form("POST", "/apps/{app}/services/{service}/triggers/enable", "ServiceTriggersEnable", "convox:app:update"),
    form("POST", "/apps/{app}/services/{service}/triggers/disable", "ServiceTriggersDisable", "convox:app:update"),
    form("POST", "/apps/{app}/services/{service}/triggers/threshold", "ServiceTriggersThresholdSet", "convox:app:update"),
    // Resources. Their `url` carries the connection credentials.
    get("/apps/{app}/resources", "ResourceList", "convox:resource:read").secret_reply(),
    get("/apps/{app}/resources/{name}", "ResourceGet", "convox:resource:read").secret_reply(),
    ws("/apps/{app}/resources/{name}/console", "ResourceConsole", "convox:resource:exec").refused(DB_CONSOLE),
    download("/apps/{app}/resources/{name}/data", "ResourceExport", "convox:resource:export").secret_reply().refused(DB_EXPORT),
    upload("PUT", "/apps/{app}/resources/{name}/data", "ResourceImport", "convox:resource:import").refused(DB_IMPORT),
    get("/resources", "SystemResourceList", "convox:resource:read").secret_reply(),
    bare("OPTIONS", "/resources", "SystemResourceTypes", "convox:resource:read"),
    form("POST", "/resources", "SystemResourceCreate", "convox:resource:create").refused(RACK_RESOURCE),
    get("/resources/{name}", "SystemResourceGet", "convox:resource:read").secret_reply(),
    form("PUT", "/resources/{name}", "SystemResourceUpdate", "convox:resource:update").refused(RACK_RESOURCE),
    bare("DELETE", "/resources/{name}", "SystemResourceDelete", "convox:resource:delete").refused(RACK_RESOURCE),
    form("POST", "/resources/{name}/links", "SystemResourceLink", "convox:resource:update").refused(RACK_RESOURCE),
    bare("DELETE", "/resources/{name}/links/{app}", "SystemResourceUnlink", "convox:resource:update").refused(RACK_RESOURCE),
    // Rack / system
    get("/system", "SystemGet", "convox:rack:read"),
    form("PUT", "/system", "SystemUpdate", "convox:rack:update").refused(RACK_UPDATE).opened_by(PolicySwitch::AllowRackUpdate),
    get("/system/capacity", "CapacityGet", "convox:rack:read"),
    ws("/system/logs", "SystemLogs", "convox:log:read"),
    get("/system/metrics", "SystemMetrics", "convox:rack:read"),
    get("/system/processes", "SystemProcesses", "convox:rack:read"),
    get("/system/releases", "SystemReleases", "convox:rack:read"),
    form("POST", "/system/jwt/token", "SystemJwtToken", "convox:rack:manage").secret_reply().refused(JWT_MINT),
    form("PUT", "/system/jwt/rotate", "SystemJwtSignKeyRotate", "convox:rack:manage").refused(JWT_ROTATE),
    form("POST", "/system/karpenter/cleanup", "KarpenterCleanup", "convox:rack:manage").refused(KARPENTER),
    // Sends a notification event to the rack's webhooks: could spoof one.
    form("POST", "/events", "EventSend", "convox:event:create"),
    get("/instances", "InstanceList", "convox:instance:list"),
    form("POST", "/instances/keyroll", "InstanceKeyroll", "convox:instance:keyroll").refused(KEYROLL),
    ws("/instances/{id}/shell", "InstanceShell", "convox:instance:exec").refused(NODE_SHELL),
    bare("DELETE", "/instances/{id}", "InstanceTerminate", "convox:instance:terminate").refused(NODE_TERMINATE),
    get("/certificates", "CertificateList", "convox:cert:list"),
    form("POST", "/certificates", "CertificateCreate", "convox:cert:create").refused(CERT_UPLOAD),
    form("POST", "/certificates/generate", "CertificateGenerate", "convox:cert:generate").refused(CERT_CHANGE),
    form("POST", "/certificates/{id}/renew", "CertificateRenew", "convox:cert:update").refused(CERT_CHANGE),
    bare("DELETE", "/certificates/{id}", "CertificateDelete", "convox:cert:delete").refused(CERT_CHANGE),
    form("PUT", "/apps/{app}/ssl/{service}/{port}", "CertificateApply", "convox:cert:update").refused(CERT_CHANGE),
    get("/letsencrypt/config", "LetsEncryptConfigGet", "convox:cert:read"),
    form("PUT", "/letsencrypt/config", "LetsEncryptConfigApply", "convox:cert:manage").refused(CERT_CHANGE),
    get("/registries", "RegistryList", "convox:registry:list").secret_reply().refused(REGISTRY_LIST),
    form("POST", "/registries", "RegistryAdd", "convox:registry:add").refused(REGISTRY_CHANGE),
    bare("DELETE", "/registries/{server...}", "RegistryRemove", "convox:registry:remove").refused(REGISTRY_CHANGE),
    // Docker Registry v2 for the app repositories: pulls read, anything else pushes.
    proxy("GET", "/v2/{path...}", "RegistryProxy", "convox:build:read"),
    proxy("HEAD", "/v2/{path...}", "RegistryProxy", "convox:build:read"),
    proxy("*", "/v2/{path...}", "RegistryProxy", "convox:build:create").refused(IMAGE_PUSH),
    ws("/proxy/{host}/{port}", "Proxy", "convox:rack:proxy").refused(TUNNEL),
    proxy("*", "/custom/http/proxy/{path...}", "ProxyHttpService", "convox:rack:proxy").refused(TUNNEL),
    // Legacy (v2 rack) paths the current CLI still calls (sdk/compat.go).
    get("/apps/{app}/parameters", "AppParametersGetV2", "convox:app:read").legacy(),
    // Every parameter is its own form field here.
    form("POST", "/apps/{app}/parameters", "AppParametersSetV2", "convox:app:update").legacy(),
    upload("POST", "/apps/{app}/environment", "EnvironmentSetV2", "convox:env:set").body(BodyFormat::EnvLines).legacy(),
    // `env unset` on old racks (sdk/compat.go EnvironmentUnset, pkg/cli/env.go).
    bare("DELETE", "/apps/{app}/environment/{key}", "EnvironmentUnsetV2", "convox:env:set").legacy(),
    get("/apps/{app}/formation", "FormationGetV2", "convox:app:read").legacy(),
    form("POST", "/apps/{app}/formation/{service}", "FormationUpdateV2", "convox:app:update").legacy(),
    get("/apps/{app}/ssl", "SslListV2", "convox:app:read").legacy(),
    ws("/instances/{id}/ssh", "InstanceShellV2", "convox:instance:exec").refused(NODE_SHELL).legacy(),
    ws("/apps/{app}/processes/{service}/run", "ProcessRunAttachedV2", "convox:process:start").legacy(),
    form("POST", "/apps/{app}/processes/{service}/run", "ProcessRunDetachedV2", "convox:process:start").legacy(),
    // The server comes in the query (`?server=`).
    bare("DELETE", "/registries", "RegistryRemoveV2", "convox:registry:remove").refused(REGISTRY_CHANGE).legacy(),
];
