//! The admin API of clients (`/admin/clients…`, behind the admin key like the rest of
//! `/admin`): create, list, read, update, delete, and rotate a confidential client's secret
//! (shown once, stored hashed).

use super::Ctx;
use crate::error::{AppError, AppResult};
use crate::http::{Method, Request, Response};
use crate::oauth::client::{new_secret, Client, ClientInput, ClientType};
use crate::oauth::store::OAuthStore;
use crate::platform::Platform;

/// `/admin/clients…` once the admin key has been checked; `None` for other admin paths.
pub async fn route<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    rest: &[&str],
) -> Option<AppResult<Response>> {
    Some(match (req.method, rest) {
        (Method::Get, ["clients"]) => list(ctx).await,
        (Method::Post, ["clients"]) => create(ctx, req).await,
        (Method::Get, ["clients", id]) => get(ctx, id).await,
        (Method::Patch, ["clients", id]) => update(ctx, req, id).await,
        (Method::Delete, ["clients", id]) => delete(ctx, id).await,
        (Method::Post, ["clients", id, "secret"]) => rotate_secret(ctx, id).await,
        (_, ["clients"] | ["clients", _] | ["clients", _, "secret"]) => {
            Err(AppError::MethodNotAllowed)
        }
        _ => return None,
    })
}

fn input(req: &Request) -> AppResult<ClientInput> {
    ClientInput::parse(&req.parse_body::<serde_json::Value>()?).map_err(AppError::BadRequest)
}

async fn list<P: Platform>(ctx: &Ctx<'_, P>) -> AppResult<Response> {
    let clients = ctx.p.oauth().list_clients().await?;
    let list: Vec<serde_json::Value> = clients.iter().map(Client::to_json).collect();
    Ok(Response::json(200, &serde_json::json!({ "clients": list })))
}

async fn create<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> AppResult<Response> {
    let (client, secret) =
        Client::create(ctx.cfg, input(req)?, ctx.p.now()).map_err(AppError::BadRequest)?;
    ctx.p.oauth().create_client(&client).await?;
    let mut body = client.to_json();
    if let Some(s) = secret {
        body["client_secret"] = s.expose().into();
    }
    Ok(Response::json(201, &body))
}

async fn load<P: Platform>(ctx: &Ctx<'_, P>, id: &str) -> AppResult<Client> {
    ctx.p
        .oauth()
        .get_client(id)
        .await?
        .ok_or(AppError::NotFound)
}

async fn get<P: Platform>(ctx: &Ctx<'_, P>, id: &str) -> AppResult<Response> {
    Ok(Response::json(200, &load(ctx, id).await?.to_json()))
}

async fn update<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, id: &str) -> AppResult<Response> {
    let patch = input(req)?;
    let mut client = load(ctx, id).await?;
    client
        .apply(ctx.cfg, patch, ctx.p.now())
        .map_err(AppError::BadRequest)?;
    if !ctx.p.oauth().update_client(&client).await? {
        return Err(AppError::NotFound);
    }
    Ok(Response::json(200, &client.to_json()))
}

async fn delete<P: Platform>(ctx: &Ctx<'_, P>, id: &str) -> AppResult<Response> {
    if !ctx.p.oauth().delete_client(id).await? {
        return Err(AppError::NotFound);
    }
    Ok(Response::new(204))
}

async fn rotate_secret<P: Platform>(ctx: &Ctx<'_, P>, id: &str) -> AppResult<Response> {
    let mut client = load(ctx, id).await?;
    if client.kind != ClientType::Confidential {
        return Err(AppError::Conflict("A public client has no secret.".into()));
    }
    let (secret, hash) = new_secret();
    client.secret_hash = Some(hash);
    client.updated_at = ctx.p.now();
    if !ctx.p.oauth().update_client(&client).await? {
        return Err(AppError::NotFound);
    }
    let mut body = client.to_json();
    body["client_secret"] = secret.expose().into();
    Ok(Response::json(200, &body))
}
