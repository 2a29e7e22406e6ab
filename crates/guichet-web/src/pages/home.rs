//! The platform home page: the territory's EPCIs and their member communes.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use guichet_store::Tenant;

use crate::pages::{Layout, render};
use crate::{AppError, AppState};

struct Group {
    root: Tenant,
    members: Vec<Tenant>,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    layout: Layout,
    groups: Vec<Group>,
}

/// `GET /`
pub(crate) async fn platform_home(State(state): State<AppState>) -> Result<Response, AppError> {
    let roots = state.store.list_root_tenants().await?;
    let mut groups = Vec::with_capacity(roots.len());
    for root in roots {
        let mut members = state.store.list_member_tenants(root.id).await?;
        members.sort_by_key(|m| crate::pages::collation_key(&m.name));
        groups.push(Group { root, members });
    }
    let layout = Layout::platform("Accueil", &state.config.platform_name);
    render(&HomePage { layout, groups })
}
