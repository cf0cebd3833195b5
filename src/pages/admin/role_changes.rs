//! Role changes that wait for a second administrator, on /roles: a change
//! that adds administrator power, an `audit:*` or a critical permission,
//! while two or more administrators exist.

use crate::api::*;
use crate::components::{class::*, FormError, LoadError, StepUpCode};
use crate::dto::RoleChangeView;
use leptos::prelude::*;

#[component]
pub fn RoleChanges(#[prop(into)] saved: Signal<usize>) -> impl IntoView {
    let approve = ServerAction::<ApproveRoleChange>::new();
    let reject = ServerAction::<RejectRoleChange>::new();
    let data = Resource::new(
        move || saved.get() + approve.version().get() + reject.version().get(),
        |_| pending_role_changes(),
    );
    view! {
        <section id="role-changes" class=CARD aria-labelledby="changes-h">
            <h2 id="changes-h" class="mb-2 font-semibold">
                "Changes waiting for a second administrator"
            </h2>
            <FormError action=approve />
            <FormError action=reject />
            <Suspense fallback=|| {
                view! { <p>"Loading…"</p> }
            }>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok(list) if list.is_empty() => {
                            view! { <p class="text-sm text-slate-600">"None."</p> }.into_any()
                        }
                        Ok(list) => {
                            view! {
                                <ul class="divide-y divide-slate-100 text-sm">
                                    {list.into_iter().map(|c| change_item(c, approve, reject)).collect_view()}
                                </ul>
                            }
                                .into_any()
                        }
                        Err(error) => view! { <LoadError error /> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

fn change_item(
    c: RoleChangeView,
    approve: ServerAction<ApproveRoleChange>,
    reject: ServerAction<RejectRoleChange>,
) -> impl IntoView {
    let id = c.id.to_string();
    let removed = (!c.removed.is_empty()).then(|| format!(" · removes: {}", c.removed.join(", ")));
    let approve_form = (!c.mine).then(|| {
        let id = id.clone();
        view! {
            <ActionForm action=approve attr:class="flex flex-wrap items-end gap-2">
                <input type="hidden" name="id" value=id.clone() />
                <StepUpCode id=format!("change-code-{id}") />
                <button type="submit" class=BUTTON>
                    "Approve"
                </button>
            </ActionForm>
        }
    });
    view! {
        <li class="py-2" data-change=c.id.to_string()>
            <p>
                <span class="font-medium">{c.role_name}</span>
                " ("
                {c.role}
                ") · proposed by "
                {c.proposed_by}
                " at "
                {c.proposed_at}
            </p>
            <p class="text-xs text-slate-700">"Adds: " {c.added.join(", ")} {removed}</p>
            <div class="mt-1 flex flex-wrap items-end gap-2">
                {approve_form} <ActionForm action=reject>
                    <input type="hidden" name="id" value=id />
                    <button type="submit" class=DANGER>
                        {if c.mine { "Withdraw" } else { "Reject" }}
                    </button>
                </ActionForm>
            </div>
        </li>
    }
}
