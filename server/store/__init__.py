"""Durable records of the room: questions, votes, answers, actions."""
