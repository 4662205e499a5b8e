def iso(moment) -> str | None:
    """ISO 8601 in UTC with a Z, as JavaScript's Date.toISOString writes it."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z") if moment else None


def user_profile(user) -> dict:
    return {
        "id": user.pk,
        "email": user.email or None,
        "firstName": user.first_name or None,
        "lastName": user.last_name or None,
        "imageUrl": user.image_url or None,
        "createdAt": iso(user.clerk_created_at or user.created_at),
    }
