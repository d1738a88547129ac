use super::*;
use crate::path::normalize;
use crate::rbac::DenialKind;
use crate::routes::{match_route, request_form};

struct Request {
    method: &'static str,
    path: &'static str,
    websocket: bool,
    headers: Vec<(&'static str, &'static str)>,
    query: Option<&'static str>,
    form: Vec<(&'static str, &'static str)>,
}

fn req(method: &'static str, path: &'static str) -> Request {
    Request {
        method,
        path,
        websocket: false,
        headers: Vec::new(),
        query: None,
        form: Vec::new(),
    }
}

fn ws(path: &'static str) -> Request {
    Request {
        websocket: true,
        ..req("GET", path)
    }
}

impl Request {
    fn header(mut self, name: &'static str, value: &'static str) -> Request {
        self.headers.push((name, value));
        self
    }
    fn form(mut self, name: &'static str, value: &'static str) -> Request {
        self.form.push((name, value));
        self
    }
    fn query(mut self, query: &'static str) -> Request {
        self.query = Some(query);
        self
    }

    fn decide(&self, settings: &PolicySettings, role: Role) -> Result<&'static str, Denial> {
        let method = Method::from_bytes(self.method.as_bytes()).unwrap();
        let path = normalize(self.path).unwrap();
        let m = match_route(&method, &path, self.websocket)
            .unwrap_or_else(|e| panic!("{} {}: {e}", self.method, self.path));
        let mut headers = HeaderMap::new();
        for (k, v) in &self.headers {
            headers.append(
                http::HeaderName::from_static(k),
                http::HeaderValue::from_static(v),
            );
        }
        let body: Vec<(String, String)> = self
            .form
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let form = request_form(self.query, Some(&body));
        decide(settings, role, &m, &headers, Some(&form))
    }
}

/// The matrix's columns: viewer ops deployer cicd admin auditor.
const ROLES: [Role; 6] = Role::ALL;

/// One row: a request, the permission it needs, the lowest role holding
/// it, the outcome for viewer ops deployer cicd admin auditor
/// (A allow, R RBAC denial, P policy denial), and a piece of the policy message.
struct Row {
    request: Request,
    permission: &'static str,
    lowest: &'static str,
    outcomes: &'static str,
    policy: &'static str,
}

fn row(
    request: Request,
    permission: &'static str,
    lowest: &'static str,
    outcomes: &'static str,
    policy: &'static str,
) -> Row {
    Row {
        request,
        permission,
        lowest,
        outcomes,
        policy,
    }
}

const DESTRUCTIVE: &str = DESTRUCTIVE_DENIED;
const REFUSED: &str = "refused by gateway policy: ";
const BLOCKED: &str = "may not start processes in service";
const ADMIN_ONLY: &str = "commands require admin role (ADMIN_ONLY_COMMANDS)";

fn matrix() -> Vec<Row> {
    vec![
        // apps
        row(
            req("GET", "/apps"),
            "convox:app:list",
            "viewer",
            "AAAAAR",
            "",
        ),
        row(
            req("GET", "/apps/myapp"),
            "convox:app:read",
            "viewer",
            "AAAAAR",
            "",
        ),
        row(
            req("POST", "/apps").form("name", "new"),
            "convox:app:create",
            "admin",
            "RRRRAR",
            "",
        ),
        row(
            req("PUT", "/apps/myapp").form("lock", "true"),
            "convox:app:update",
            "deployer",
            "RRARAR",
            "",
        ),
        row(
            req("DELETE", "/apps/myapp"),
            "convox:app:delete",
            "admin",
            "RRRRPR",
            DESTRUCTIVE,
        ),
        row(
            req("GET", "/apps/myapp/diagnose"),
            "convox:log:read",
            "viewer",
            "AAARAR",
            "",
        ),
        row(
            req("POST", "/apps/myapp/budget").form("monthly-cap-usd", "100"),
            "convox:app:manage",
            "admin",
            "RRRRAR",
            "",
        ),
        row(
            req("DELETE", "/apps/myapp/budget"),
            "convox:app:manage",
            "admin",
            "RRRRPR",
            DESTRUCTIVE,
        ),
        row(
            req("GET", "/apps/myapp/configs"),
            "convox:env:read",
            "ops",
            "RAARAR",
            "",
        ),
        row(
            req("PUT", "/apps/myapp/configs/db").form("value", "eA=="),
            "convox:env:set",
            "deployer",
            "RRARAR",
            "",
        ),
        // builds and objects
        row(
            req("GET", "/apps/myapp/builds"),
            "convox:build:list",
            "viewer",
            "AAARAR",
            "",
        ),
        row(
            req("GET", "/apps/myapp/builds/B1"),
            "convox:build:read",
            "viewer",
            "AAARAR",
            "",
        ),
        row(
            req("POST", "/apps/myapp/builds").form("url", "object://myapp/tmp/a.tgz"),
            "convox:build:create",
            "deployer",
            "RRARAR",
            "",
        ),
        row(
            req("GET", "/apps/myapp/builds/B1.tgz"),
            "convox:build:read",
            "viewer",
            "AAARAR",
            "",
        ),
        row(
            req("PUT", "/apps/myapp/builds/B1").form("status", "complete"),
            "convox:build:update",
            "admin",
            "RRRRAR",
            "",
        ),
        row(
            ws("/apps/myapp/builds/B1/logs"),
            "convox:log:read",
            "viewer",
            "AAARAR",
            "",
        ),
        row(
            req("POST", "/apps/myapp/objects/tmp/a.tgz"),
            "convox:object:create",
            "deployer",
            "RRARAR",
            "",
        ),
        row(
            req("GET", "/apps/myapp/objects/tmp/a.tgz"),
            "convox:object:read",
            "deployer",
            "RRARAR",
            "",
        ),
        row(
            req("DELETE", "/apps/myapp/objects/tmp/a.tgz"),
            "convox:object:delete",
            "admin",
            "RRRRPR",
            DESTRUCTIVE,
        ),
        // releases and env
        row(
            req("GET", "/apps/myapp/releases").query("limit=1"),
            "convox:release:list",
            "ops",
            "RAARAR",
            "",
        ),
        row(
            req("GET", "/apps/myapp/releases/R1"),
            "convox:release:read",
            "ops",
            "RAARAR",
            "",
        ),
        row(
            req("POST", "/apps/myapp/releases").form("build", "B1"),
            "convox:release:create",
            "deployer",
            "RRARAR",
            "",
        ),
        row(
            req("POST", "/apps/myapp/releases").form("env", "A=1\nB=2"),
            "convox:env:set",
            "deployer",
            "RRARAR",
            "",
        ),
        row(
            req("POST", "/apps/myapp/releases").query("env=A%3D1"),
            "convox:env:set",
            "deployer",
            "RRARAR",
            "",
        ),
        row(
            req("POST", "/apps/myapp/releases/R1/promote").form("force", "false"),
            "convox:release:promote",
            "deployer",
            "RRARAR",
            "",
        ),
        // processes
        row(
            req("GET", "/apps/myapp/processes"),
            "convox:process:list",
            "viewer",
            "AAAAAR",
            "",
        ),
        row(
            req("GET", "/apps/myapp/processes/p1"),
            "convox:process:read",
            "viewer",
            "AAAAAR",
            "",
        ),
        row(
            req("DELETE", "/apps/myapp/processes/p1"),
            "convox:process:terminate",
            "ops",
            "RAARAR",
            "",
        ),
        row(
            req("POST", "/apps/myapp/services/command/processes").header("command", "sleep 3600"),
            "convox:process:start",
            "ops",
            "RAARAR",
            "",
        ),
        row(
            req("POST", "/apps/myapp/services/command/processes")
                .header("command", "bin/pre_release"),
            "convox:process:start",
            "ops",
            "RAARAR",
            "",
        ),
        row(
            req("POST", "/apps/myapp/services/web/processes").header("command", "sleep 3600"),
            "convox:process:start",
            "ops",
            "RPPRPR",
            BLOCKED,
        ),
        row(
            req("POST", "/apps/myapp/services/worker/processes").header("command", "sleep 3600"),
            "convox:process:start",
            "ops",
            "RPPRPR",
            BLOCKED,
        ),
        row(
            req("POST", "/apps/myapp/services/command/processes")
                .header("command", "rails console"),
            "convox:process:start",
            "ops",
            "RPPRAR",
            ADMIN_ONLY,
        ),
        row(
            req("POST", "/apps/myapp/services/command/processes")
                .header("command", "sleep 3600")
                .header("privileged", "true"),
            "convox:process:start",
            "ops",
            "RPPRAR",
            "privileged processes require admin role",
        ),
        row(
            ws("/apps/myapp/processes/p1/exec").header("command", "bin/pre_release"),
            "convox:process:exec",
            "ops",
            "RAARAR",
            "",
        ),
        row(
            ws("/apps/myapp/processes/p1/exec").header("command", "rake  db:migrate"),
            "convox:process:exec",
            "ops",
            "RPPRAR",
            ADMIN_ONLY,
        ),
        row(
            ws("/apps/myapp/processes/p1/exec")
                .header("command", "ls")
                .query("command=rake+db%3Aseed"),
            "convox:process:exec",
            "ops",
            "RPPRAR",
            ADMIN_ONLY,
        ),
        row(
            ws("/apps/myapp/processes/p1/logs"),
            "convox:log:read",
            "viewer",
            "AAARAR",
            "",
        ),
        row(
            req("GET", "/apps/myapp/processes/p1/files").query("file=/etc/hosts"),
            "convox:process:exec",
            "ops",
            "RAARAR",
            "",
        ),
        row(
            req("DELETE", "/apps/myapp/processes/p1/files").query("files=/tmp/x"),
            "convox:process:exec",
            "ops",
            "RPPRPR",
            DESTRUCTIVE,
        ),
        row(
            ws("/apps/myapp/logs").header("prefix", "true"),
            "convox:log:read",
            "viewer",
            "AAARAR",
            "",
        ),
        row(
            req("GET", "/apps/myapp/services"),
            "convox:app:read",
            "viewer",
            "AAAAAR",
            "",
        ),
        row(
            req("PUT", "/apps/myapp/services/web").form("count", "2"),
            "convox:app:update",
            "deployer",
            "RRARAR",
            "",
        ),
        row(
            req("POST", "/apps/myapp/services/web/restart"),
            "convox:app:restart",
            "ops",
            "RAARAR",
            "",
        ),
        // resources
        row(
            req("GET", "/apps/myapp/resources"),
            "convox:resource:read",
            "admin",
            "RRRRAR",
            "",
        ),
        row(
            ws("/apps/myapp/resources/db/console"),
            "convox:resource:exec",
            "admin",
            "RRRRPR",
            REFUSED,
        ),
        row(
            req("GET", "/apps/myapp/resources/db/data"),
            "convox:resource:export",
            "admin",
            "RRRRPR",
            REFUSED,
        ),
        row(
            req("POST", "/resources").form("kind", "postgres"),
            "convox:resource:create",
            "admin",
            "RRRRPR",
            REFUSED,
        ),
        row(
            req("DELETE", "/resources/db"),
            "convox:resource:delete",
            "admin",
            "RRRRPR",
            REFUSED,
        ),
        // rack
        row(
            req("GET", "/auth"),
            "convox:rack:read",
            "viewer",
            "AAAAAR",
            "",
        ),
        row(
            req("GET", "/system"),
            "convox:rack:read",
            "viewer",
            "AAAAAR",
            "",
        ),
        row(
            req("GET", "/system/processes").query("all=true"),
            "convox:rack:read",
            "viewer",
            "AAAAAR",
            "",
        ),
        row(
            req("PUT", "/system").form("version", "3.19.1"),
            "convox:rack:update",
            "admin",
            "RRRRPR",
            "ALLOW_RACK_UPDATE",
        ),
        row(
            req("PUT", "/system").form("parameters", "node_type=t3.large"),
            "convox:rack:manage",
            "admin",
            "RRRRPR",
            "ALLOW_RACK_UPDATE",
        ),
        row(
            ws("/system/logs"),
            "convox:log:read",
            "viewer",
            "AAARAR",
            "",
        ),
        row(
            req("POST", "/system/jwt/token").form("role", "read"),
            "convox:rack:manage",
            "admin",
            "RRRRPR",
            "minting rack JWTs",
        ),
        row(
            req("PUT", "/system/jwt/rotate"),
            "convox:rack:manage",
            "admin",
            "RRRRPR",
            REFUSED,
        ),
        row(
            req("POST", "/system/karpenter/cleanup"),
            "convox:rack:manage",
            "admin",
            "RRRRPR",
            REFUSED,
        ),
        row(
            req("POST", "/events").form("action", "app:deploy"),
            "convox:event:create",
            "admin",
            "RRRRAR",
            "",
        ),
        row(
            req("GET", "/instances"),
            "convox:instance:list",
            "viewer",
            "AAAAAR",
            "",
        ),
        row(
            req("POST", "/instances/keyroll"),
            "convox:instance:keyroll",
            "admin",
            "RRRRPR",
            REFUSED,
        ),
        row(
            ws("/instances/i-1/shell"),
            "convox:instance:exec",
            "admin",
            "RRRRPR",
            REFUSED,
        ),
        row(
            req("DELETE", "/instances/i-1"),
            "convox:instance:terminate",
            "admin",
            "RRRRPR",
            "terminating rack nodes",
        ),
        row(
            req("GET", "/certificates"),
            "convox:cert:list",
            "admin",
            "RRRRAR",
            "",
        ),
        row(
            req("POST", "/certificates").form("pub", "x"),
            "convox:cert:create",
            "admin",
            "RRRRPR",
            REFUSED,
        ),
        row(
            req("PUT", "/apps/myapp/ssl/web/443").form("id", "cert-1"),
            "convox:cert:update",
            "admin",
            "RRRRPR",
            REFUSED,
        ),
        row(
            req("GET", "/registries"),
            "convox:registry:list",
            "admin",
            "RRRRPR",
            "passwords",
        ),
        row(
            req("POST", "/registries").form("server", "r.example.com"),
            "convox:registry:add",
            "admin",
            "RRRRPR",
            REFUSED,
        ),
        row(
            req("DELETE", "/registries/r.example.com"),
            "convox:registry:remove",
            "admin",
            "RRRRPR",
            REFUSED,
        ),
        row(
            req("GET", "/v2/myapp/manifests/latest"),
            "convox:build:read",
            "viewer",
            "AAARAR",
            "",
        ),
        row(
            req("PUT", "/v2/myapp/manifests/latest"),
            "convox:build:create",
            "deployer",
            "RRPRPR",
            "pushing images",
        ),
        row(
            ws("/proxy/10.0.0.5/5432"),
            "convox:rack:proxy",
            "admin",
            "RRRRPR",
            "tunnels",
        ),
        row(
            req("POST", "/custom/http/proxy/api").header("x-host", "svc.local"),
            "convox:rack:proxy",
            "admin",
            "RRRRPR",
            "tunnels",
        ),
        row(
            req("GET", "/machines"),
            "convox:rack:read",
            "viewer",
            "AAAAAR",
            "",
        ),
        row(
            req("GET", "/racks"),
            "convox:rack:read",
            "viewer",
            "AAAAAR",
            "",
        ),
        // legacy
        row(
            req("POST", "/apps/myapp/environment"),
            "convox:env:set",
            "deployer",
            "RRARAR",
            "",
        ),
        row(
            req("DELETE", "/apps/myapp/environment/FOO"),
            "convox:env:set",
            "deployer",
            "RRPRPR",
            DESTRUCTIVE,
        ),
        row(
            req("GET", "/apps/myapp/parameters"),
            "convox:app:read",
            "viewer",
            "AAAAAR",
            "",
        ),
        row(
            ws("/apps/myapp/processes/web/run").header("command", "bash"),
            "convox:process:start",
            "ops",
            "RPPRPR",
            BLOCKED,
        ),
        row(
            req("POST", "/apps/myapp/processes/command/run").form("command", "rails c"),
            "convox:process:start",
            "ops",
            "RPPRAR",
            ADMIN_ONLY,
        ),
        row(
            ws("/instances/i-1/ssh"),
            "convox:instance:exec",
            "admin",
            "RRRRPR",
            REFUSED,
        ),
        row(
            req("DELETE", "/registries").query("server=r.example.com"),
            "convox:registry:remove",
            "admin",
            "RRRRPR",
            REFUSED,
        ),
    ]
}

#[test]
fn role_by_route_matrix() {
    let settings = PolicySettings::default();
    for row in matrix() {
        let r = &row.request;
        assert_eq!(row.outcomes.len(), ROLES.len());
        for (role, outcome) in ROLES.iter().zip(row.outcomes.chars()) {
            let what = format!("{role} {} {}", r.method, r.path);
            match (outcome, r.decide(&settings, *role)) {
                ('A', Ok(permission)) => assert_eq!(permission, row.permission, "{what}"),
                ('R', Err(denial)) => {
                    assert_eq!(denial.kind, DenialKind::Rbac, "{what}: {}", denial.message);
                    assert_eq!(denial.permission, row.permission, "{what}");
                    assert_eq!(
                        denial.message,
                        format!(
                            "permission denied: {} requires {} role",
                            row.permission, row.lowest
                        ),
                        "{what}"
                    );
                }
                ('P', Err(denial)) => {
                    assert_eq!(
                        denial.kind,
                        DenialKind::Policy,
                        "{what}: {}",
                        denial.message
                    );
                    assert_eq!(denial.permission, row.permission, "{what}");
                    assert!(
                        !row.policy.is_empty() && denial.message.contains(row.policy),
                        "{what}: {:?} lacks {:?}",
                        denial.message,
                        row.policy
                    );
                }
                (want, got) => panic!("{what}: wanted {want}, got {got:?}"),
            }
        }
    }
}

#[test]
fn the_matrix_covers_every_resource() {
    let covered: std::collections::BTreeSet<&str> = matrix()
        .iter()
        .map(|r| r.permission.split(':').nth(1).unwrap())
        .collect();
    let in_table: std::collections::BTreeSet<&str> = crate::routes::ROUTES
        .iter()
        .map(|r| r.permission.split(':').nth(1).unwrap())
        .collect();
    assert_eq!(covered, in_table);
}

#[test]
fn rbac_wins_over_policy() {
    let s = PolicySettings::default();
    // A deployer deleting an app hears about the permission, not the policy.
    let d = req("DELETE", "/apps/myapp")
        .decide(&s, Role::Deployer)
        .unwrap_err();
    assert_eq!(
        d.message,
        "permission denied: convox:app:delete requires admin role"
    );
    let d = req("PUT", "/system")
        .form("version", "3.20.0")
        .decide(&s, Role::Viewer)
        .unwrap_err();
    assert_eq!(
        d.message,
        "permission denied: convox:rack:update requires admin role"
    );
    let d = req("GET", "/apps").decide(&s, Role::Auditor).unwrap_err();
    assert_eq!(
        d.message,
        "permission denied: convox:app:list requires viewer role"
    );
    // An ops member exec'ing an admin-only command into a blocked service:
    // the run rules speak only after RBAC allowed it.
    let d = req("POST", "/apps/myapp/services/web/processes")
        .header("command", "rails console")
        .decide(&s, Role::Viewer)
        .unwrap_err();
    assert_eq!(d.kind, DenialKind::Rbac);
}

#[test]
fn destructive_actions_open_with_the_setting() {
    let open = PolicySettings {
        allow_destructive_actions: true,
        ..PolicySettings::default()
    };
    assert_eq!(
        req("DELETE", "/apps/myapp").decide(&open, Role::Admin),
        Ok("convox:app:delete")
    );
    assert_eq!(
        req("DELETE", "/apps/myapp/objects/tmp/a.tgz").decide(&open, Role::Admin),
        Ok("convox:object:delete")
    );
    assert_eq!(
        req("DELETE", "/apps/myapp/environment/FOO").decide(&open, Role::Deployer),
        Ok("convox:env:set")
    );
    assert_eq!(
        req("DELETE", "/apps/myapp")
            .decide(&open, Role::Deployer)
            .unwrap_err()
            .kind,
        DenialKind::Rbac
    );
    // Rack-level refusals do not open with it.
    let d = req("DELETE", "/instances/i-1")
        .decide(&open, Role::Admin)
        .unwrap_err();
    assert!(
        d.message.contains("terminating rack nodes"),
        "{}",
        d.message
    );
    let d = req("DELETE", "/registries/r.example.com")
        .decide(&open, Role::Admin)
        .unwrap_err();
    assert_eq!(d.kind, DenialKind::Policy);
    // Stopping a process was never refused.
    assert_eq!(
        req("DELETE", "/apps/myapp/processes/p1").decide(&PolicySettings::default(), Role::Ops),
        Ok("convox:process:terminate")
    );
}

#[test]
fn rack_update_opens_to_admins_only() {
    let open = PolicySettings {
        rack_update_for_admin: true,
        ..PolicySettings::default()
    };
    for r in [
        req("PUT", "/system").form("version", "3.20.0"),
        req("PUT", "/system").form("parameters", "a=1"),
        req("PUT", "/system").form("count", "3"),
    ] {
        assert!(r.decide(&open, Role::Admin).is_ok());
        assert_eq!(
            r.decide(&open, Role::Deployer).unwrap_err().kind,
            DenialKind::Rbac
        );
        assert_eq!(
            r.decide(&PolicySettings::default(), Role::Admin)
                .unwrap_err()
                .kind,
            DenialKind::Policy
        );
    }
    // Only PUT /system: the other rack-level routes stay refused.
    assert!(req("PUT", "/system/jwt/rotate")
        .decide(&open, Role::Admin)
        .is_err());
    assert!(req("POST", "/system/jwt/token")
        .form("role", "admin")
        .decide(&open, Role::Admin)
        .is_err());
}

#[test]
fn run_rules_follow_the_settings() {
    let none = PolicySettings {
        run_blocked_services: vec![],
        admin_only_commands: vec![],
        ..PolicySettings::default()
    };
    let web = req("POST", "/apps/myapp/services/web/processes").header("command", "sleep 3600");
    assert!(web.decide(&none, Role::Ops).is_ok());
    let console = ws("/apps/myapp/processes/p1/exec").header("command", "rails console");
    assert!(console.decide(&none, Role::Ops).is_ok());

    let custom = PolicySettings {
        run_blocked_services: vec!["Scheduler".into()],
        admin_only_commands: vec!["psql".into(), "  ".into()],
        ..PolicySettings::default()
    };
    assert!(web.decide(&custom, Role::Ops).is_ok());
    assert!(req("POST", "/apps/myapp/services/scheduler/processes")
        .decide(&custom, Role::Ops)
        .unwrap_err()
        .message
        .contains("\"scheduler\""));
    assert!(console.decide(&custom, Role::Ops).is_ok());
    let psql = ws("/apps/myapp/processes/p1/exec").header("command", "/usr/bin/psql $DATABASE_URL");
    let d = psql.decide(&custom, Role::Deployer).unwrap_err();
    assert_eq!(
        d.message,
        "refused by gateway policy: \"psql\" commands require admin role (ADMIN_ONLY_COMMANDS)"
    );
    assert!(psql.decide(&custom, Role::Admin).is_ok());
}

#[test]
fn the_detached_run_placeholder_stays_allowed() {
    let s = PolicySettings::default();
    for role in [Role::Ops, Role::Deployer, Role::Admin] {
        assert_eq!(
            req("POST", "/apps/myapp/services/command/processes")
                .header("command", "sleep 3600")
                .decide(&s, role),
            Ok("convox:process:start")
        );
    }
    assert_eq!(admin_only_match(&s, "sleep 3600"), None);
}

#[test]
fn every_command_a_request_carries_is_judged() {
    let s = PolicySettings::default();
    // Two Command headers: the rack reads the first, we judge both.
    let d = ws("/apps/myapp/processes/p1/exec")
        .header("command", "ls")
        .header("command", "rails console")
        .decide(&s, Role::Ops)
        .unwrap_err();
    assert_eq!(d.kind, DenialKind::Policy);
    // A privileged flag in the form counts too.
    assert!(req("POST", "/apps/myapp/processes/command/run")
        .form("privileged", "TRUE")
        .decide(&s, Role::Ops)
        .is_err());
    assert!(req("POST", "/apps/myapp/services/command/processes")
        .header("privileged", "false")
        .decide(&s, Role::Ops)
        .is_ok());
}

#[test]
fn admin_only_commands_resist_trivial_variations() {
    let s = PolicySettings::default();
    for (command, listed) in [
        ("rails console", "rails console"),
        ("  rails   console  ", "rails console"),
        ("rails\tconsole", "rails console"),
        ("rails\nconsole", "rails console"),
        ("RAILS CONSOLE", "rails console"),
        ("rails console -e production", "rails console"),
        ("rails console --sandbox", "rails console"),
        ("bundle exec rails console", "rails console"),
        ("bin/rails console", "rails console"),
        ("./bin/rails c", "rails console"),
        ("rails c", "rails console"),
        (
            "RAILS_ENV=production bundle exec rails console",
            "rails console",
        ),
        ("sh -c 'rails console'", "rails console"),
        ("bash -lc \"bundle exec rails console\"", "rails console"),
        ("\"rails\" \"console\"", "rails console"),
        ("rails con''sole", "rails console"),
        ("rai\\ls console", "rails console"),
        ("true;rails console", "rails console"),
        ("true&&rails console", "rails console"),
        ("echo x|rails console", "rails console"),
        ("$(rails console)", "rails console"),
        ("rake db:migrate", "rake db:migrate"),
        ("bundle exec rake db:migrate VERSION=0", "rake db:migrate"),
        ("rake -f Rakefile db:migrate", "rake db:migrate"),
        ("rails db:migrate", "rake db:migrate"),
        ("bin/rails db:seed", "rake db:seed"),
        ("/usr/local/bin/rake db:seed", "rake db:seed"),
    ] {
        assert_eq!(admin_only_match(&s, command), Some(listed), "{command:?}");
    }
    for command in [
        "sleep 3600",
        "bin/pre_release",
        "run_as_deploy rake checks:verify_dns checks:generate_test_submission",
        "rake stripe:prepare",
        "rake db:migrate:status",
        "rails consolex",
        "rails server",
        "rails routes",
        "rake",
        "",
    ] {
        assert_eq!(admin_only_match(&s, command), None, "{command:?}");
    }
}

#[test]
fn method_overrides_change_nothing() {
    let s = PolicySettings::default();
    for name in [
        "x-http-method-override",
        "x-method-override",
        "x-http-method",
    ] {
        // A viewer's GET dressed as a DELETE is still a GET.
        assert_eq!(
            req("GET", "/apps/myapp")
                .header(name, "DELETE")
                .decide(&s, Role::Viewer),
            Ok("convox:app:read")
        );
        // And a deployer's DELETE dressed as a GET is still a DELETE.
        assert_eq!(
            req("DELETE", "/apps/myapp")
                .header(name, "GET")
                .decide(&s, Role::Deployer)
                .unwrap_err()
                .message,
            "permission denied: convox:app:delete requires admin role"
        );
    }
    assert_eq!(
        req("GET", "/apps/myapp")
            .query("_method=DELETE")
            .decide(&s, Role::Viewer),
        Ok("convox:app:read")
    );
    assert_eq!(
        req("POST", "/apps/myapp/services/web/restart")
            .form("_method", "DELETE")
            .decide(&s, Role::Ops),
        Ok("convox:app:restart")
    );
    for name in [
        "x-http-method-override",
        "x-method-override",
        "authorization",
        "x-convox-actor",
        "convox-actor",
    ] {
        assert!(STRIP_REQUEST_HEADERS.contains(&name), "{name}");
    }
}

#[test]
fn decisions_carry_permission_and_reason() {
    let s = PolicySettings::default();
    let m = match_route(
        &Method::POST,
        &normalize("/apps/myapp/releases").unwrap(),
        false,
    )
    .unwrap();
    let form = vec![("env".to_owned(), "A=1".to_owned())];
    let d = decide(&s, Role::Ops, &m, &HeaderMap::new(), Some(&form));
    assert_eq!(
        d,
        Err(Denial {
            permission: "convox:env:set".into(),
            message: "permission denied: convox:env:set requires deployer role".into(),
            kind: DenialKind::Rbac,
        })
    );
    let d = decide(&s, Role::Deployer, &m, &HeaderMap::new(), Some(&form));
    assert_eq!(d, Ok("convox:env:set"));
}

#[test]
fn command_words_normalise() {
    assert_eq!(
        command_words("  Bundle  exec\t'bin/rails' c -e production "),
        ["bundle", "exec", "rails", "console", "-e", "production"]
    );
    assert_eq!(command_words("rails db:migrate"), ["rake", "db:migrate"]);
    assert!(command_words(" ; ").is_empty());
}

#[test]
fn shell_syntax_is_admin_only_unless_listed_exactly() {
    let hidden = [
        "echo hi; rails console",
        "true && rake db:drop",
        "false || rake db:drop",
        "cat x | sh",
        "$(printf rails) console",
        "`echo rails` console",
        "r${EMPTY}ails console",
        "rake db:mig''rate",
        "\"rails\" console",
        "ra\\ils console",
        "bin/rai?s console",
        "bin/rai* console",
        "sh < script.sh",
        "echo x > /tmp/y",
        "sleep 1 &",
    ];
    let settings = PolicySettings::default();
    for command in hidden {
        for exec in [
            ws("/apps/myapp/processes/p1/exec").header("command", command),
            req("POST", "/apps/myapp/services/jobs/processes").header("command", command),
        ] {
            let denial = exec.decide(&settings, Role::Ops).unwrap_err();
            assert_eq!(denial.kind, DenialKind::Policy, "{command:?}");
            assert!(
                denial.message.contains("shell syntax")
                    || denial.message.contains("ADMIN_ONLY_COMMANDS"),
                "{command:?}: {}",
                denial.message
            );
            assert!(exec.decide(&settings, Role::Admin).is_ok(), "{command:?}");
        }
    }
    // Where the words show nothing listed, the shell syntax alone refuses.
    for command in ["r${EMPTY}ails console", "bin/rai?s console", "cat x | sh"] {
        let exec = ws("/apps/myapp/processes/p1/exec").header("command", command);
        let denial = exec.decide(&settings, Role::Ops).unwrap_err();
        assert!(
            denial.message.contains("shell syntax"),
            "{command:?}: {}",
            denial.message
        );
    }
    // Plain commands are judged by their words as before.
    for plain in [
        "sleep 3600",
        "bundle exec rake assets:precompile",
        "env",
        "ls -la /app",
    ] {
        let exec = ws("/apps/myapp/processes/p1/exec").header("command", plain);
        assert!(exec.decide(&settings, Role::Ops).is_ok(), "{plain}");
    }
    // An admin may list an exact command; only that exact text passes.
    let listed = PolicySettings {
        shell_commands_allowed: vec!["bin/migrate-check && echo ok".into()],
        ..PolicySettings::default()
    };
    let exec = |c: &'static str| ws("/apps/myapp/processes/p1/exec").header("command", c);
    assert!(exec(" bin/migrate-check && echo ok ")
        .decide(&listed, Role::Ops)
        .is_ok());
    assert!(exec("bin/migrate-check && echo ok; rails console")
        .decide(&listed, Role::Ops)
        .is_err());
    // Listed shell syntax still cannot hide an admin-only command.
    let sneaky = PolicySettings {
        shell_commands_allowed: vec!["true && rake db:drop".into()],
        ..PolicySettings::default()
    };
    assert!(exec("true && rake db:drop")
        .decide(&sneaky, Role::Ops)
        .is_err());
}

#[test]
fn the_new_default_admin_only_commands() {
    let settings = PolicySettings::default();
    for command in [
        "rake db:drop",
        "bundle exec rake db:schema:load",
        "bin/rails db:schema:load",
        "rails dbconsole",
        "rails db -p",
        "bin/rails runner script.rb",
        "rails r script.rb",
        "rails db:drop DISABLE_DATABASE_ENVIRONMENT_CHECK=1",
    ] {
        let exec = ws("/apps/myapp/processes/p1/exec").header("command", command);
        let denial = exec.decide(&settings, Role::Deployer).unwrap_err();
        assert!(
            denial.message.contains("ADMIN_ONLY_COMMANDS"),
            "{command}: {}",
            denial.message
        );
        assert!(exec.decide(&settings, Role::Admin).is_ok(), "{command}");
    }
    let exec = ws("/apps/myapp/processes/p1/exec").header("command", "rake db:migrate:status");
    assert!(exec.decide(&settings, Role::Ops).is_ok());
}
