-- trigger dualwrite_users-display-name_bi (BEFORE INSERT ON users)
CREATE TRIGGER `app`.`dualwrite_users-display-name_bi` BEFORE INSERT ON `app`.`users` FOR EACH ROW BEGIN
  /* dualwrite:users-display-name:59dabae7259f3e0b */
  IF (NEW.`full_name` IS NOT NULL) AND (NEW.`display_name` IS NOT NULL) THEN
    IF COALESCE((SELECT m.stage IN ('live', 'rampdown', 'complete', 'contract') FROM `app`.`dualwrite_migrations` m WHERE m.migration_key = 'users-display-name'), FALSE) THEN
      BEGIN
        DECLARE EXIT HANDLER FOR SQLEXCEPTION
        BEGIN
          DECLARE v_msg TEXT;
          GET DIAGNOSTICS CONDITION 1 v_msg = MESSAGE_TEXT;
          SET v_msg = LEFT(CONCAT('dualwrite users-display-name: the backward transform failed on table users: ', v_msg), 128);
          RESIGNAL SET MESSAGE_TEXT = v_msg;
        END;
        SET NEW.`full_name` = CASE WHEN NEW.`display_name` IS NULL THEN NULL ELSE (NEW.`display_name`) END;
      END;
    ELSE
      BEGIN
        DECLARE EXIT HANDLER FOR SQLEXCEPTION
        BEGIN
          DECLARE v_msg TEXT;
          GET DIAGNOSTICS CONDITION 1 v_msg = MESSAGE_TEXT;
          SET v_msg = LEFT(CONCAT('dualwrite users-display-name: the forward transform failed on table users: ', v_msg), 128);
          RESIGNAL SET MESSAGE_TEXT = v_msg;
        END;
        SET NEW.`display_name` = CASE WHEN NEW.`full_name` IS NULL THEN NULL ELSE (NEW.`full_name`) END;
      END;
    END IF;
  ELSEIF NEW.`full_name` IS NOT NULL THEN
    BEGIN
      DECLARE EXIT HANDLER FOR SQLEXCEPTION
      BEGIN
        DECLARE v_msg TEXT;
        GET DIAGNOSTICS CONDITION 1 v_msg = MESSAGE_TEXT;
        SET v_msg = LEFT(CONCAT('dualwrite users-display-name: the forward transform failed on table users: ', v_msg), 128);
        RESIGNAL SET MESSAGE_TEXT = v_msg;
      END;
      SET NEW.`display_name` = CASE WHEN NEW.`full_name` IS NULL THEN NULL ELSE (NEW.`full_name`) END;
    END;
  ELSEIF NEW.`display_name` IS NOT NULL THEN
    BEGIN
      DECLARE EXIT HANDLER FOR SQLEXCEPTION
      BEGIN
        DECLARE v_msg TEXT;
        GET DIAGNOSTICS CONDITION 1 v_msg = MESSAGE_TEXT;
        SET v_msg = LEFT(CONCAT('dualwrite users-display-name: the backward transform failed on table users: ', v_msg), 128);
        RESIGNAL SET MESSAGE_TEXT = v_msg;
      END;
      IF (NOT (NEW.`display_name` <=> CASE WHEN NEW.`full_name` IS NULL THEN NULL ELSE (NEW.`full_name`) END)) THEN
        SET NEW.`full_name` = CASE WHEN NEW.`display_name` IS NULL THEN NULL ELSE (NEW.`display_name`) END;
      END IF;
    END;
  END IF;
END;
-- drop: DROP TRIGGER IF EXISTS `app`.`dualwrite_users-display-name_bi`
-- trigger dualwrite_users-display-name_bu (BEFORE UPDATE ON users)
CREATE TRIGGER `app`.`dualwrite_users-display-name_bu` BEFORE UPDATE ON `app`.`users` FOR EACH ROW BEGIN
  /* dualwrite:users-display-name:4bd88efe2c5a1b6a */
  IF (NOT (NEW.`full_name` <=> OLD.`full_name`)) AND (NOT (NEW.`display_name` <=> OLD.`display_name`)) THEN
    IF COALESCE((SELECT m.stage IN ('live', 'rampdown', 'complete', 'contract') FROM `app`.`dualwrite_migrations` m WHERE m.migration_key = 'users-display-name'), FALSE) THEN
      BEGIN
        DECLARE EXIT HANDLER FOR SQLEXCEPTION
        BEGIN
          DECLARE v_msg TEXT;
          GET DIAGNOSTICS CONDITION 1 v_msg = MESSAGE_TEXT;
          SET v_msg = LEFT(CONCAT('dualwrite users-display-name: the backward transform failed on table users: ', v_msg), 128);
          RESIGNAL SET MESSAGE_TEXT = v_msg;
        END;
        SET NEW.`full_name` = CASE WHEN NEW.`display_name` IS NULL THEN NULL ELSE (NEW.`display_name`) END;
      END;
    ELSE
      BEGIN
        DECLARE EXIT HANDLER FOR SQLEXCEPTION
        BEGIN
          DECLARE v_msg TEXT;
          GET DIAGNOSTICS CONDITION 1 v_msg = MESSAGE_TEXT;
          SET v_msg = LEFT(CONCAT('dualwrite users-display-name: the forward transform failed on table users: ', v_msg), 128);
          RESIGNAL SET MESSAGE_TEXT = v_msg;
        END;
        SET NEW.`display_name` = CASE WHEN NEW.`full_name` IS NULL THEN NULL ELSE (NEW.`full_name`) END;
      END;
    END IF;
  ELSEIF NOT (NEW.`full_name` <=> OLD.`full_name`) THEN
    BEGIN
      DECLARE EXIT HANDLER FOR SQLEXCEPTION
      BEGIN
        DECLARE v_msg TEXT;
        GET DIAGNOSTICS CONDITION 1 v_msg = MESSAGE_TEXT;
        SET v_msg = LEFT(CONCAT('dualwrite users-display-name: the forward transform failed on table users: ', v_msg), 128);
        RESIGNAL SET MESSAGE_TEXT = v_msg;
      END;
      SET NEW.`display_name` = CASE WHEN NEW.`full_name` IS NULL THEN NULL ELSE (NEW.`full_name`) END;
    END;
  ELSEIF NOT (NEW.`display_name` <=> OLD.`display_name`) THEN
    BEGIN
      DECLARE EXIT HANDLER FOR SQLEXCEPTION
      BEGIN
        DECLARE v_msg TEXT;
        GET DIAGNOSTICS CONDITION 1 v_msg = MESSAGE_TEXT;
        SET v_msg = LEFT(CONCAT('dualwrite users-display-name: the backward transform failed on table users: ', v_msg), 128);
        RESIGNAL SET MESSAGE_TEXT = v_msg;
      END;
      IF (NOT (NEW.`display_name` <=> CASE WHEN NEW.`full_name` IS NULL THEN NULL ELSE (NEW.`full_name`) END)) THEN
        SET NEW.`full_name` = CASE WHEN NEW.`display_name` IS NULL THEN NULL ELSE (NEW.`display_name`) END;
      END IF;
    END;
  END IF;
END;
-- drop: DROP TRIGGER IF EXISTS `app`.`dualwrite_users-display-name_bu`
