//! Database targets: registering a MySQL or MariaDB server, testing its
//! connector, the privileges roles carry there, and drift scans.

use crate::api::*;
use crate::components::{class::*, Badge, Done, Field, FormError, LoadError, StepUpCode};
use crate::dto::{ConnectionReport, DriftView, TargetView};
use leptos::prelude::*;

#[component]
pub fn TargetsPage() -> impl IntoView {
    let register = ServerAction::<RegisterDbTarget>::new();
    let map = ServerAction::<MapDbPrivilege>::new();
    let unmap = ServerAction::<UnmapDbPrivilege>::new();
    let approve = ServerAction::<ApproveDbPrivilege>::new();
    let test = ServerAction::<TestDbTarget>::new();
    let scan = ServerAction::<ScanDbDrift>::new();
    let correction = ServerAction::<SetDbDriftCorrection>::new();
    let data = Resource::new(
        move || {
            register.version().get()
                + map.version().get()
                + unmap.version().get()
                + approve.version().get()
                + correction.version().get()
        },
        |_| db_targets(),
    );
    let roles = Resource::new(|| (), |_| catalogue());
    view! {
        <h1 class="mb-2 text-2xl font-semibold">"Database targets"</h1>
        <p class="mb-4 text-sm text-slate-600">
            "Grants become real at these MySQL or MariaDB servers: each employee gets their own account, opened while a role "
            "carrying privileges there is theirs and locked, with its connections killed, when it ends."
        </p>
        <FormError action=map />
        <FormError action=unmap />
        <FormError action=approve />
        <FormError action=test />
        <FormError action=scan />
        <FormError action=correction />
        {move || {
            map.value()
                .get()
                .and_then(|r| r.ok())
                .map(|waits| {
                    view! {
                        <p role="status" class=NOTICE_OK>
                            {if waits {
                                "Privilege proposed: it waits for a second administrator before it reaches the target."
                            } else {
                                "Privilege added: the role's database role holds it now."
                            }}
                        </p>
                    }
                })
        }}
        <Done action=approve message="Privilege approved: the role's database role holds it now." />
        <Done action=correction message="Drift correction changed." />
        {move || test.value().get().and_then(|r| r.ok()).map(|r| view! { <Report report=r /> })}
        {move || scan.value().get().and_then(|r| r.ok()).map(|d| view! { <Drift drift=d /> })}
        <Suspense fallback=|| {
            view! { <p>"Loading…"</p> }
        }>
            {move || Suspend::new(async move {
                let roles: Vec<(String, String)> = roles
                    .await
                    .map(|c| c.roles.into_iter().map(|r| (r.key.clone(), format!("{} ({})", r.name, r.key))).collect())
                    .unwrap_or_default();
                match data.await {
                    Ok(list) if list.is_empty() => view! { <p class="mb-6">"No database targets yet."</p> }.into_any(),
                    Ok(list) => {
                        list.into_iter()
                            .map(|t| view! { <TargetCard t roles=roles.clone() map unmap approve test scan correction /> })
                            .collect_view()
                            .into_any()
                    }
                    Err(e) => view! { <LoadError error=e /> }.into_any(),
                }
            })}
        </Suspense>
        <RegisterForm register />
    }
}

#[component]
fn Report(report: ConnectionReport) -> impl IntoView {
    let ok = report.missing.is_empty();
    view! {
        <div role="status" class=CARD data-testid="connection-report">
            <p class="mb-1 font-semibold">"Connected to " {report.server.clone()}</p>
            <p class="mb-1 text-sm">
                {if ok {
                    "The connector holds every privilege Gatehouse needs.".to_string()
                } else {
                    format!("The connector lacks: {}.", report.missing.join(", "))
                }}
            </p>
            <ul class="font-mono text-xs text-slate-600">
                {report.grants.into_iter().map(|g| view! { <li>{g}</li> }).collect_view()}
            </ul>
        </div>
    }
}

#[component]
fn Drift(drift: DriftView) -> impl IntoView {
    view! {
        <div role="status" class=CARD data-testid="drift-report">
            <p class="mb-1 font-semibold">
                {if drift.findings.is_empty() {
                    "No drift: the target is as Gatehouse intends.".to_string()
                } else {
                    format!("{} difference(s) found:", drift.findings.len())
                }}
            </p>
            <ul class="list-disc pl-5 text-sm">{drift.findings.into_iter().map(|f| view! { <li>{f}</li> }).collect_view()}</ul>
            {(!drift.corrected.is_empty())
                .then(|| {
                    view! {
                        <p class="mt-2 text-sm font-semibold">"Corrected:"</p>
                        <ul class="list-disc pl-5 text-sm">
                            {drift.corrected.into_iter().map(|f| view! { <li>{f}</li> }).collect_view()}
                        </ul>
                    }
                })}
        </div>
    }
}

#[component]
fn TargetCard(
    t: TargetView,
    roles: Vec<(String, String)>,
    map: ServerAction<MapDbPrivilege>,
    unmap: ServerAction<UnmapDbPrivilege>,
    approve: ServerAction<ApproveDbPrivilege>,
    test: ServerAction<TestDbTarget>,
    scan: ServerAction<ScanDbDrift>,
    correction: ServerAction<SetDbDriftCorrection>,
) -> impl IntoView {
    let id = t.id;
    let auto = t.auto_correct;
    view! {
        <section class=CARD data-target=t.name.clone() aria-label=format!("Database target {}", t.name)>
            <h2 class="font-semibold">{t.name.clone()}</h2>
            <p class="mb-2 text-sm text-slate-600">
                <span class="font-mono">{format!("{}:{}", t.host, t.port)}</span>
                {match (t.tls, t.private_ca) {
                    (true, true) => " · TLS, certificate verified against the target's CA",
                    (true, false) => " · TLS, certificate verified",
                    _ => " · no TLS",
                }} " · connector "
                <span class="font-mono">{t.username.clone()}</span>
                {(t.pending > 0).then(|| view! { " · " <Badge text=format!("{} pending", t.pending) /> })}
            </p>
            <div class="mb-3 flex flex-wrap gap-2">
                <ActionForm action=test>
                    <input type="hidden" name="id" value=id.to_string() />
                    <button type="submit" class=SMALL_BUTTON>"Test connection"</button>
                </ActionForm>
                <ActionForm action=scan>
                    <input type="hidden" name="id" value=id.to_string() />
                    <button type="submit" class=SMALL_BUTTON>"Scan for drift"</button>
                </ActionForm>
            </div>
            <table class="mb-3 w-full text-sm">
                <caption class="sr-only">{format!("Privileges roles carry on {}", t.name)}</caption>
                <thead class="bg-slate-50">
                    <tr>
                        <th scope="col" class=TH>"Role"</th>
                        <th scope="col" class=TH>"Database role"</th>
                        <th scope="col" class=TH>"Privilege"</th>
                        <th scope="col" class=TH>"On"</th>
                        <th scope="col" class=TH><span class="sr-only">"Remove"</span></th>
                    </tr>
                </thead>
                <tbody>
                    {t
                        .mappings
                        .into_iter()
                        .map(|m| {
                            let on = match (&m.table, &m.column) {
                                (None, _) => format!("{}.*", m.schema),
                                (Some(tb), None) => format!("{}.{tb}", m.schema),
                                (Some(tb), Some(c)) => format!("{}.{tb} ({c})", m.schema),
                            };
                            view! {
                                <tr class="border-t border-slate-100" data-mapping=m.id.to_string()>
                                    <td class=TD>{m.role.clone()}</td>
                                    <td class=TD><span class="font-mono">{m.db_role.clone()}</span></td>
                                    <td class=TD>
                                        {m.privilege.clone()}
                                        {m.waiting.then(|| view! { " " <Badge text="waiting for a second administrator".to_string() /> })}
                                    </td>
                                    <td class=TD><span class="font-mono">{on}</span></td>
                                    <td class=TD>
                                        {m
                                            .waiting
                                            .then(|| {
                                                view! {
                                                    <ActionForm action=approve attr:class="mb-1 flex items-end gap-2">
                                                        <input type="hidden" name="id" value=m.id.to_string() />
                                                        <StepUpCode id=format!("approve-code-{}", m.id) />
                                                        <button type="submit" class=SMALL_BUTTON>"Approve"</button>
                                                    </ActionForm>
                                                }
                                            })}
                                        <ActionForm action=unmap attr:class="flex items-end gap-2">
                                            <input type="hidden" name="id" value=m.id.to_string() />
                                            <StepUpCode id=format!("unmap-code-{}", m.id) />
                                            <button type="submit" class=SMALL_DANGER>
                                                {if m.waiting { "Withdraw" } else { "Remove" }}
                                            </button>
                                        </ActionForm>
                                    </td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
            <MappingForm id roles map />
            <ActionForm action=correction attr:class="mt-3 flex flex-wrap items-end gap-2">
                <input type="hidden" name="id" value=id.to_string() />
                {(!auto).then(|| view! { <input type="hidden" name="on" value="on" /> })}
                <StepUpCode id=format!("correct-code-{id}") />
                <button type="submit" class=SMALL_BUTTON>
                    {if auto {
                        "Stop correcting drift (now: Gatehouse's own accounts and roles are corrected)"
                    } else {
                        "Correct drift of Gatehouse's own accounts and roles automatically"
                    }}
                </button>
            </ActionForm>
        </section>
    }
}

#[component]
fn MappingForm(id: i64, roles: Vec<(String, String)>, map: ServerAction<MapDbPrivilege>) -> impl IntoView {
    let field = move |name: &'static str, label: &'static str, placeholder: &'static str| {
        let fid = format!("{name}-{id}");
        view! {
            <div>
                <label for=fid.clone() class="mb-1 block text-sm font-medium text-slate-700">{label}</label>
                <input id=fid name=name class=INPUT placeholder=placeholder />
            </div>
        }
    };
    view! {
        <ActionForm action=map attr:class="flex flex-wrap items-end gap-2" attr:aria-label="Add a privilege">
            <input type="hidden" name="target" value=id.to_string() />
            <div>
                <label for=format!("role-{id}") class="mb-1 block text-sm font-medium text-slate-700">"Role"</label>
                <select id=format!("role-{id}") name="role" class=INPUT>
                    {roles.into_iter().map(|(k, l)| view! { <option value=k>{l}</option> }).collect_view()}
                </select>
            </div>
            <div>
                <label for=format!("privilege-{id}") class="mb-1 block text-sm font-medium text-slate-700">"Privilege"</label>
                <select id=format!("privilege-{id}") name="privilege" class=INPUT>
                    {["SELECT", "INSERT", "UPDATE", "DELETE"].map(|p| view! { <option value=p>{p}</option> }).collect_view()}
                </select>
            </div>
            {field("schema", "Schema", "app")}
            {field("table", "Table (optional)", "customers")}
            {field("column", "Column (optional)", "")}
            <StepUpCode id=format!("map-code-{id}") />
            <button type="submit" class=BUTTON>"Add privilege"</button>
        </ActionForm>
    }
}

#[component]
fn RegisterForm(register: ServerAction<RegisterDbTarget>) -> impl IntoView {
    view! {
        <section class=CARD aria-labelledby="new-target-h">
            <h2 id="new-target-h" class="mb-2 font-semibold">"Register a database target"</h2>
            <p class="mb-3 text-sm text-slate-600">
                "Gatehouse connects with these credentials first and refuses a connector that lacks a privilege. "
                "The password is sealed under the master key and never shown again."
            </p>
            <Done action=register message="Target registered." />
            <FormError action=register />
            <ActionForm action=register>
                <Field label="Name" name="name" autocomplete="off" hint="e.g. production" />
                <Field label="Host" name="host" autocomplete="off" hint="must be listed in GATEHOUSE_DB_TARGET_ALLOWED_HOSTS" />
                <div class="mb-4">
                    <label for="port" class="mb-1 block text-sm font-medium text-slate-700">"Port"</label>
                    <input id="port" name="port" inputmode="numeric" class=INPUT placeholder="3306" aria-describedby="port-hint" />
                    <p id="port-hint" class="mt-1 text-xs text-slate-500">"3306 when empty"</p>
                </div>
                <div class="mb-4 flex items-center gap-2">
                    <input type="checkbox" id="tls" name="tls" value="on" />
                    <label for="tls" class="text-sm">"TLS (the server's certificate is verified)"</label>
                </div>
                <div class="mb-4">
                    <label for="tls_ca" class="mb-1 block text-sm font-medium text-slate-700">"CA certificate (optional)"</label>
                    <textarea id="tls_ca" name="tls_ca" rows="3" class=INPUT aria-describedby="tls-ca-hint"
                        placeholder="-----BEGIN CERTIFICATE-----"></textarea>
                    <p id="tls-ca-hint" class="mt-1 text-xs text-slate-500">
                        "PEM of the authority that signed the server's certificate when it is a private one "
                        "(Amazon RDS, a company CA); empty to trust public roots only"
                    </p>
                </div>
                <Field label="Connector user name" name="username" autocomplete="off" />
                <Field label="Connector password" name="password" kind="password" autocomplete="new-password" />
                <div class="mb-4">
                    <StepUpCode id="register-code" />
                </div>
                <button type="submit" class=BUTTON>"Register target"</button>
            </ActionForm>
        </section>
    }
}
