-- trigger dualwrite_people-split-name_bi (BEFORE INSERT ON people)
CREATE TRIGGER `app`.`dualwrite_people-split-name_bi` BEFORE INSERT ON `app`.`people` FOR EACH ROW BEGIN
  /* dualwrite:people-split-name:1ad2c03a5493d067 */
  IF (NEW.`full_name` IS NOT NULL) AND (NEW.`first_name` IS NOT NULL OR NEW.`last_name` IS NOT NULL) THEN
    IF COALESCE((SELECT m.stage IN ('live', 'rampdown', 'complete', 'contract') FROM `app`.`dualwrite_migrations` m WHERE m.migration_key = 'people-split-name'), FALSE) THEN
      BEGIN
        DECLARE EXIT HANDLER FOR SQLEXCEPTION
        BEGIN
          DECLARE v_msg TEXT;
          GET DIAGNOSTICS CONDITION 1 v_msg = MESSAGE_TEXT;
          SET v_msg = LEFT(CONCAT('dualwrite people-split-name: the backward transform failed on table people: ', v_msg), 128);
          RESIGNAL SET MESSAGE_TEXT = v_msg;
        END;
        SET NEW.`full_name` = CASE WHEN NEW.`first_name` IS NULL AND NEW.`last_name` IS NULL THEN NULL ELSE (RTRIM(CONCAT(NEW.`first_name`, ' ', COALESCE(NEW.`last_name`, '')))) END;
      END;
    ELSE
      BEGIN
        DECLARE EXIT HANDLER FOR SQLEXCEPTION
        BEGIN
          DECLARE v_msg TEXT;
          GET DIAGNOSTICS CONDITION 1 v_msg = MESSAGE_TEXT;
          SET v_msg = LEFT(CONCAT('dualwrite people-split-name: the forward transform failed on table people: ', v_msg), 128);
          RESIGNAL SET MESSAGE_TEXT = v_msg;
        END;
        SET NEW.`first_name` = CASE WHEN NEW.`full_name` IS NULL THEN NULL ELSE (CASE WHEN INSTR(NEW.`full_name`, ' ') > 0 THEN substr(NEW.`full_name`, 1, INSTR(NEW.`full_name`, ' ') - 1) ELSE NEW.`full_name` END) END;
        SET NEW.`last_name` = CASE WHEN NEW.`full_name` IS NULL THEN NULL ELSE (CASE WHEN INSTR(NEW.`full_name`, ' ') > 0 THEN substr(NEW.`full_name`, INSTR(NEW.`full_name`, ' ') + 1) ELSE '' END) END;
      END;
    END IF;
  ELSEIF NEW.`full_name` IS NOT NULL THEN
    BEGIN
      DECLARE EXIT HANDLER FOR SQLEXCEPTION
      BEGIN
        DECLARE v_msg TEXT;
        GET DIAGNOSTICS CONDITION 1 v_msg = MESSAGE_TEXT;
        SET v_msg = LEFT(CONCAT('dualwrite people-split-name: the forward transform failed on table people: ', v_msg), 128);
        RESIGNAL SET MESSAGE_TEXT = v_msg;
      END;
      SET NEW.`first_name` = CASE WHEN NEW.`full_name` IS NULL THEN NULL ELSE (CASE WHEN INSTR(NEW.`full_name`, ' ') > 0 THEN substr(NEW.`full_name`, 1, INSTR(NEW.`full_name`, ' ') - 1) ELSE NEW.`full_name` END) END;
      SET NEW.`last_name` = CASE WHEN NEW.`full_name` IS NULL THEN NULL ELSE (CASE WHEN INSTR(NEW.`full_name`, ' ') > 0 THEN substr(NEW.`full_name`, INSTR(NEW.`full_name`, ' ') + 1) ELSE '' END) END;
    END;
  ELSEIF NEW.`first_name` IS NOT NULL OR NEW.`last_name` IS NOT NULL THEN
    BEGIN
      DECLARE EXIT HANDLER FOR SQLEXCEPTION
      BEGIN
        DECLARE v_msg TEXT;
        GET DIAGNOSTICS CONDITION 1 v_msg = MESSAGE_TEXT;
        SET v_msg = LEFT(CONCAT('dualwrite people-split-name: the backward transform failed on table people: ', v_msg), 128);
        RESIGNAL SET MESSAGE_TEXT = v_msg;
      END;
      IF (NOT (NEW.`first_name` <=> CASE WHEN NEW.`full_name` IS NULL THEN NULL ELSE (CASE WHEN INSTR(NEW.`full_name`, ' ') > 0 THEN substr(NEW.`full_name`, 1, INSTR(NEW.`full_name`, ' ') - 1) ELSE NEW.`full_name` END) END) OR NOT (NEW.`last_name` <=> CASE WHEN NEW.`full_name` IS NULL THEN NULL ELSE (CASE WHEN INSTR(NEW.`full_name`, ' ') > 0 THEN substr(NEW.`full_name`, INSTR(NEW.`full_name`, ' ') + 1) ELSE '' END) END)) THEN
        SET NEW.`full_name` = CASE WHEN NEW.`first_name` IS NULL AND NEW.`last_name` IS NULL THEN NULL ELSE (RTRIM(CONCAT(NEW.`first_name`, ' ', COALESCE(NEW.`last_name`, '')))) END;
      END IF;
    END;
  END IF;
END;
-- drop: DROP TRIGGER IF EXISTS `app`.`dualwrite_people-split-name_bi`
-- trigger dualwrite_people-split-name_bu (BEFORE UPDATE ON people)
CREATE TRIGGER `app`.`dualwrite_people-split-name_bu` BEFORE UPDATE ON `app`.`people` FOR EACH ROW BEGIN
  /* dualwrite:people-split-name:361f05feebd6fa99 */
  IF (NOT (NEW.`full_name` <=> OLD.`full_name`)) AND (NOT (NEW.`first_name` <=> OLD.`first_name`) OR NOT (NEW.`last_name` <=> OLD.`last_name`)) THEN
    IF COALESCE((SELECT m.stage IN ('live', 'rampdown', 'complete', 'contract') FROM `app`.`dualwrite_migrations` m WHERE m.migration_key = 'people-split-name'), FALSE) THEN
      BEGIN
        DECLARE EXIT HANDLER FOR SQLEXCEPTION
        BEGIN
          DECLARE v_msg TEXT;
          GET DIAGNOSTICS CONDITION 1 v_msg = MESSAGE_TEXT;
          SET v_msg = LEFT(CONCAT('dualwrite people-split-name: the backward transform failed on table people: ', v_msg), 128);
          RESIGNAL SET MESSAGE_TEXT = v_msg;
        END;
        SET NEW.`full_name` = CASE WHEN NEW.`first_name` IS NULL AND NEW.`last_name` IS NULL THEN NULL ELSE (RTRIM(CONCAT(NEW.`first_name`, ' ', COALESCE(NEW.`last_name`, '')))) END;
      END;
    ELSE
      BEGIN
        DECLARE EXIT HANDLER FOR SQLEXCEPTION
        BEGIN
          DECLARE v_msg TEXT;
          GET DIAGNOSTICS CONDITION 1 v_msg = MESSAGE_TEXT;
          SET v_msg = LEFT(CONCAT('dualwrite people-split-name: the forward transform failed on table people: ', v_msg), 128);
          RESIGNAL SET MESSAGE_TEXT = v_msg;
        END;
        SET NEW.`first_name` = CASE WHEN NEW.`full_name` IS NULL THEN NULL ELSE (CASE WHEN INSTR(NEW.`full_name`, ' ') > 0 THEN substr(NEW.`full_name`, 1, INSTR(NEW.`full_name`, ' ') - 1) ELSE NEW.`full_name` END) END;
        SET NEW.`last_name` = CASE WHEN NEW.`full_name` IS NULL THEN NULL ELSE (CASE WHEN INSTR(NEW.`full_name`, ' ') > 0 THEN substr(NEW.`full_name`, INSTR(NEW.`full_name`, ' ') + 1) ELSE '' END) END;
      END;
    END IF;
  ELSEIF NOT (NEW.`full_name` <=> OLD.`full_name`) THEN
    BEGIN
      DECLARE EXIT HANDLER FOR SQLEXCEPTION
      BEGIN
        DECLARE v_msg TEXT;
        GET DIAGNOSTICS CONDITION 1 v_msg = MESSAGE_TEXT;
        SET v_msg = LEFT(CONCAT('dualwrite people-split-name: the forward transform failed on table people: ', v_msg), 128);
        RESIGNAL SET MESSAGE_TEXT = v_msg;
      END;
      SET NEW.`first_name` = CASE WHEN NEW.`full_name` IS NULL THEN NULL ELSE (CASE WHEN INSTR(NEW.`full_name`, ' ') > 0 THEN substr(NEW.`full_name`, 1, INSTR(NEW.`full_name`, ' ') - 1) ELSE NEW.`full_name` END) END;
      SET NEW.`last_name` = CASE WHEN NEW.`full_name` IS NULL THEN NULL ELSE (CASE WHEN INSTR(NEW.`full_name`, ' ') > 0 THEN substr(NEW.`full_name`, INSTR(NEW.`full_name`, ' ') + 1) ELSE '' END) END;
    END;
  ELSEIF NOT (NEW.`first_name` <=> OLD.`first_name`) OR NOT (NEW.`last_name` <=> OLD.`last_name`) THEN
    BEGIN
      DECLARE EXIT HANDLER FOR SQLEXCEPTION
      BEGIN
        DECLARE v_msg TEXT;
        GET DIAGNOSTICS CONDITION 1 v_msg = MESSAGE_TEXT;
        SET v_msg = LEFT(CONCAT('dualwrite people-split-name: the backward transform failed on table people: ', v_msg), 128);
        RESIGNAL SET MESSAGE_TEXT = v_msg;
      END;
      IF (NOT (NEW.`first_name` <=> CASE WHEN NEW.`full_name` IS NULL THEN NULL ELSE (CASE WHEN INSTR(NEW.`full_name`, ' ') > 0 THEN substr(NEW.`full_name`, 1, INSTR(NEW.`full_name`, ' ') - 1) ELSE NEW.`full_name` END) END) OR NOT (NEW.`last_name` <=> CASE WHEN NEW.`full_name` IS NULL THEN NULL ELSE (CASE WHEN INSTR(NEW.`full_name`, ' ') > 0 THEN substr(NEW.`full_name`, INSTR(NEW.`full_name`, ' ') + 1) ELSE '' END) END)) THEN
        SET NEW.`full_name` = CASE WHEN NEW.`first_name` IS NULL AND NEW.`last_name` IS NULL THEN NULL ELSE (RTRIM(CONCAT(NEW.`first_name`, ' ', COALESCE(NEW.`last_name`, '')))) END;
      END IF;
    END;
  END IF;
END;
-- drop: DROP TRIGGER IF EXISTS `app`.`dualwrite_people-split-name_bu`
