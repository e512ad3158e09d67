//! What slipway names its image tags, as pure functions: each owner (one
//! environment of one compose project) has its own per-release tags and its
//! own way-back tag, and at most one owner holds a repository's plain
//! `:rollback`. Backends that keep images on an engine (Compose, a host over
//! SSH) tag by these; prune reads them to know whose an image is.

/// Who a tag belongs to on a shared engine: one environment of one compose
/// project. Several owners may use the same image repository; each names its
/// releases and its way back with its own prefix, so none moves or removes
/// another's. Compose project names hold no `.`, so `<project>.<env>` is
/// unambiguous.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub project: String,
    pub env: String,
}

/// What follows the owner's prefix in its way-back tag (release tags are digits).
const WAY_BACK_SUFFIX: &str = "rollback";
/// What follows it in the tag marking the holder of the plain `:rollback`.
const HOLDER_SUFFIX: &str = "rollback-holder";
/// Docker's limit on a tag's length.
const MAX_TAG: usize = 128;

impl Owner {
    pub fn new(project: &str, env: &str) -> Owner {
        Owner {
            project: project.to_string(),
            env: env.to_string(),
        }
    }

    fn prefix(&self) -> String {
        format!("slipway-{}.{}-", self.project, self.env)
    }

    /// The immutable per-release tag that keeps a release's images reachable
    /// independent of the moving way-back tags.
    pub fn release_tag(&self, id: i64) -> String {
        format!("{}{id}", self.prefix())
    }

    /// The way-back tag only this owner moves: names the release before the live one.
    pub fn way_back_tag(&self) -> String {
        format!("{}{WAY_BACK_SUFFIX}", self.prefix())
    }

    /// Sits on the same image as the plain `rollback_tag` while this owner
    /// holds it, so every other owner on the engine can see whose it is.
    pub fn holder_tag(&self) -> String {
        format!("{}{HOLDER_SUFFIX}", self.prefix())
    }

    /// Whether `tag` is one of this owner's (`slipway-<project>.<env>-<id|rollback|rollback-holder>`).
    pub fn owns(&self, tag: &str) -> bool {
        tag.strip_prefix(&self.prefix()).is_some_and(|rest| {
            rest == WAY_BACK_SUFFIX
                || rest == HOLDER_SUFFIX
                || (!rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit()))
        })
    }

    /// A project and environment too long for the tags above.
    pub fn check(&self) -> Result<(), String> {
        if self.holder_tag().len() > MAX_TAG {
            return Err(format!(
                "project `{}` and environment `{}` together are too long for slipway's image tags \
                 (at most {} characters between them)",
                self.project,
                self.env,
                MAX_TAG - "slipway-.-".len() - HOLDER_SUFFIX.len()
            ));
        }
        Ok(())
    }
}

/// The per-release tag of slipway before tags were namespaced
/// (`slipway-<env>-<id>`): still read, never written.
pub fn legacy_release_tag(env: &str, id: i64) -> String {
    format!("slipway-{env}-{id}")
}

/// Whether a tag is a way-back tag of any owner (`slipway-…-rollback`).
pub fn is_way_back_tag(tag: &str) -> bool {
    tag.starts_with("slipway-") && tag.ends_with(&format!("-{WAY_BACK_SUFFIX}"))
}

/// Whether `owner` may move the repository's plain way-back tag (`:rollback`,
/// the seed's convention). `tags_in_repo` is every tag of the repository on
/// the engine with the image it names; `others` says whether a tag is another
/// owner's. The plain tag belongs to the owner whose holder tag sits on the
/// same image. When it names nothing yet, or an image no holder tag marks (as
/// before an upgrade), it is free only while no other owner uses the
/// repository. So the sole user of a repository keeps `:rollback`; a second
/// one gets only its namespaced way-back tag and never moves the first's.
pub fn may_move_plain_rollback(
    owner: &Owner,
    plain: &str,
    tags_in_repo: &[(String, String)],
    others: impl Fn(&str, &str) -> bool,
) -> bool {
    let shared = tags_in_repo.iter().any(|(t, id)| others(t, id));
    let Some((_, at)) = tags_in_repo.iter().find(|(t, _)| t == plain) else {
        return !shared;
    };
    let holders: Vec<&str> = tags_in_repo
        .iter()
        .filter(|(t, id)| id == at && t.starts_with("slipway-") && t.ends_with(HOLDER_SUFFIX))
        .map(|(t, _)| t.as_str())
        .collect();
    if holders.is_empty() {
        // Unmarked (written before tags were namespaced): free for the sole
        // user, or for the owner whose own tags alone mark that image.
        let marks: Vec<&str> = tags_in_repo
            .iter()
            .filter(|(t, id)| id == at && t.starts_with("slipway-"))
            .map(|(t, _)| t.as_str())
            .collect();
        !shared || (!marks.is_empty() && marks.iter().all(|t| !others(t, at)))
    } else {
        holders.contains(&owner.holder_tag().as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_tags_are_namespaced_valid_docker_tags() {
        let o = Owner::new("shop", "staging");
        let t = o.release_tag(42);
        assert_eq!(t, "slipway-shop.staging-42");
        assert!(crate::config::names::check_tag(&t).is_ok());
        assert_eq!(o.way_back_tag(), "slipway-shop.staging-rollback");
        assert!(o.owns(&t) && o.owns(&o.way_back_tag()));
        // Another project or environment, a legacy tag, a look-alike: not ours.
        assert!(!o.owns("slipway-shop.production-42"));
        assert!(!o.owns("slipway-shop-preview.staging-42"));
        assert!(!o.owns("slipway-staging-42"));
        assert!(!o.owns("slipway-shop.staging-4x"));
        assert!(!o.owns("slipway-shop.staging-"));
        assert!(is_way_back_tag("slipway-shop.staging-rollback"));
        assert!(!is_way_back_tag("rollback"));
        let long = Owner::new(&"p".repeat(63), &"e".repeat(63));
        assert!(long.check().is_err());
        assert!(o.check().is_ok());
    }

    fn tags(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(t, i)| (t.to_string(), i.to_string()))
            .collect()
    }

    #[test]
    fn the_plain_rollback_tag_stays_with_its_first_user() {
        let a = Owner::new("a", "staging");
        let b = Owner::new("b", "staging");
        let foreign = |me: &Owner| {
            let me = me.clone();
            move |t: &str, _: &str| t.starts_with("slipway-") && !me.owns(t)
        };
        assert!(a.owns(&a.holder_tag()) && !b.owns(&a.holder_tag()));
        // Sole user: may take a free `:rollback`.
        let alone = tags(&[("slipway-a.staging-1", "i1"), ("v1", "i1")]);
        assert!(may_move_plain_rollback(&a, "rollback", &alone, foreign(&a)));
        // A holds `:rollback`, even where both way-back tags name that image.
        let shared = tags(&[
            ("rollback", "i1"),
            ("slipway-a.staging-rollback-holder", "i1"),
            ("slipway-a.staging-rollback", "i1"),
            ("slipway-b.staging-rollback", "i1"),
            ("slipway-b.staging-7", "i7"),
        ]);
        assert!(may_move_plain_rollback(
            &a,
            "rollback",
            &shared,
            foreign(&a)
        ));
        assert!(!may_move_plain_rollback(
            &b,
            "rollback",
            &shared,
            foreign(&b)
        ));
        // Free, but the repository is shared: nobody takes it.
        let free_shared = tags(&[("slipway-a.staging-1", "i1"), ("slipway-b.staging-7", "i7")]);
        assert!(!may_move_plain_rollback(
            &b,
            "rollback",
            &free_shared,
            foreign(&b)
        ));
        // Before an upgrade: `:rollback` on an image no holder tag marks; its
        // old release tag says whose it was, even once the repository is shared.
        let legacy = tags(&[
            ("rollback", "i1"),
            ("slipway-staging-1", "i1"),
            ("slipway-b.staging-1", "i3"),
        ]);
        let a_legacy = |t: &str, id: &str| {
            t.starts_with("slipway-") && !(t == "slipway-staging-1" && id == "i1")
        };
        assert!(may_move_plain_rollback(&a, "rollback", &legacy, a_legacy));
        assert!(!may_move_plain_rollback(
            &b,
            "rollback",
            &legacy,
            foreign(&b)
        ));
    }
}
