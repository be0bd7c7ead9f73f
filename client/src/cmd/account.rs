//! Your account: `pgext keygen`, `register`, `whoami`, `key add|rotate|revoke`, and `invite`
//! (an admin's invitation for a registry that registers by invitation).

use clap::Subcommand;
use pgext_spec::api;
use pgext_spec::authority::encode_public_key;
use pgext_spec::entry::Action;

use super::Env;
use crate::author;
use crate::verify::Remote;

#[derive(Subcommand)]
pub(crate) enum Cmd {
    /// Make a signing key for USER (never overwrites one).
    Keygen {
        /// Account name.
        user: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Register your account (the key's user) with the registry.
    Register {
        /// Full name.
        #[arg(long)]
        name: Option<String>,
        /// Email.
        #[arg(long)]
        email: Option<String>,
        /// Home page.
        #[arg(long)]
        uri: Option<String>,
        /// The invitation an admin of the registry made for you (`pgext invite`), when the
        /// registry registers by invitation.
        #[arg(long)]
        invite: Option<String>,
    },
    /// Who the signing key is, and the account as the registry shows it.
    Whoami {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Keys of your account.
    #[command(name = "key")]
    Keys {
        #[command(subcommand)]
        command: KeyCmd,
    },
    /// Invite USER to register with PUBKEY, signed with your admin key (--key): prints the
    /// invitation, which they pass to `pgext register --invite`.
    Invite {
        /// The account name they will register.
        user: String,
        /// Their base64 public key (`pgext whoami` or `pgext keygen` shows it).
        public_key: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum KeyCmd {
    /// Add another key to your account (for example a CI key), by its base64 public key.
    Add {
        /// The public key (`pgext whoami --key OTHER.key` shows it).
        public_key: String,
    },
    /// Replace the signing key with a new one; the key file is replaced (the old kept as .old).
    Rotate,
    /// Revoke a key of your account.
    Revoke {
        /// Its key id (`pgext whoami` lists them).
        key_id: String,
    },
}

pub(crate) async fn run(cmd: Cmd, env: Env) -> anyhow::Result<()> {
    let key_path = env.key.clone().unwrap_or_else(author::default_key_path);
    match cmd {
        Cmd::Keygen { user, json } => {
            let id = author::generate(&user);
            author::write_key(&key_path, &id, false)?;
            let info = author::key_info(&id);
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                println!(
                    "key for {} written to {} (mode 0600)",
                    user,
                    key_path.display()
                );
                println!("  key id      {}", info.key_id);
                println!("  public key  {}", info.public_key);
                println!("next: pgext register");
            }
        }
        Cmd::Register {
            name,
            email,
            uri,
            invite,
        } => {
            let id = author::load_identity(env.key.as_deref())?;
            let entry = id.sign(Action::Account {
                user: id.user.clone(),
                key: encode_public_key(&id.key.verifying_key()),
                name,
                email,
                uri,
                invite,
            });
            let r = submitter(&env)?.submit(&entry).await?;
            println!("registered {} (log entry {})", id.user, r.index);
        }
        Cmd::Whoami { json } => {
            let id = author::load_identity(env.key.as_deref())?;
            let info = author::key_info(&id);
            let reg = env.registry()?;
            let account: Option<api::Account> = Remote::new(reg)
                .json(&format!("/api/v1/accounts/{}", id.user))
                .await
                .ok();
            if json {
                let doc = serde_json::json!({"key": info, "account": account});
                println!("{}", serde_json::to_string_pretty(&doc)?);
            } else {
                println!("{} (key {})", info.user, info.key_id);
                println!("  public key  {}", info.public_key);
                match account {
                    None => println!("  not registered with {} (pgext register)", reg.name),
                    Some(a) => {
                        println!("  registered with {} at log entry {}", reg.name, a.index);
                        for k in &a.keys {
                            let state = if k.active { "active" } else { "revoked" };
                            println!("  key {} {state}", k.key_id);
                        }
                    }
                }
            }
        }
        Cmd::Keys { command } => {
            let id = author::load_identity(env.key.as_deref())?;
            let to = submitter(&env)?;
            match command {
                KeyCmd::Add { public_key } => {
                    let r = to
                        .submit(&id.sign(Action::KeyAdd {
                            key: public_key.clone(),
                        }))
                        .await?;
                    println!(
                        "key {public_key} added to {} (log entry {})",
                        id.user, r.index
                    );
                }
                KeyCmd::Rotate => {
                    let new = author::generate(&id.user);
                    let info = author::key_info(&new);
                    let r = to
                        .submit(&id.sign(Action::KeyRotate {
                            new_key: info.public_key.clone(),
                        }))
                        .await?;
                    // Only once the log took the rotation does the file change.
                    author::write_key(&key_path, &new, true)?;
                    println!(
                        "{} now signs with key {} (log entry {}); the old key file is {}.old",
                        id.user,
                        info.key_id,
                        r.index,
                        key_path.display()
                    );
                }
                KeyCmd::Revoke { key_id } => {
                    let r = to
                        .submit(&id.sign(Action::KeyRevoke {
                            revoked: key_id.clone(),
                        }))
                        .await?;
                    println!("key {key_id} revoked (log entry {})", r.index);
                }
            }
        }
        Cmd::Invite { user, public_key } => {
            let admin = author::load_identity(env.key.as_deref())?;
            println!("{}", author::invite(&admin, &user, &public_key)?);
        }
    }
    Ok(())
}

/// The nodes submissions go to.
pub(crate) fn submitter(env: &Env) -> anyhow::Result<author::Submitter> {
    let id = author::load_identity(env.key.as_deref()).ok();
    Ok(author::Submitter::new(env.registry()?, id.as_ref()))
}

/// The nodes submissions about `dist` go to: those of the registry owning the name, if one
/// does (`spec/access.md`).
pub(crate) fn submitter_for(env: &Env, dist: &str) -> anyhow::Result<author::Submitter> {
    let id = author::load_identity(env.key.as_deref()).ok();
    Ok(author::Submitter::new(env.route(dist)?, id.as_ref()))
}
